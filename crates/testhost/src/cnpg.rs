//! CloudNativePG's own schema of its `Cluster`, for tests that check a
//! rendered `Cluster` against it: the CRD from the shared folder
//! (`kubernetes/postgresql.cnpg.io_clusters.yaml`, CloudNativePG 1.30), and
//! every complaint the schema has about a value, misspelt fields included.

use serde_json::Value;

/// Where the CRD is, in the shared folder beside the repository.
pub const CLUSTER_CRD: &str = "kubernetes/postgresql.cnpg.io_clusters.yaml";

/// The `openAPIV3Schema` of CloudNativePG's `Cluster` CRD, or `None` after
/// printing why `test` skips (the shared folder does not hold the CRD).
pub fn cluster_schema(test: &str) -> Option<Value> {
    let Some(path) = crate::shared(CLUSTER_CRD) else {
        eprintln!(
            "SKIPPED {test}: CloudNativePG's CRD is missing: no {CLUSTER_CRD} in the shared folder \
             beside the repository (set IMMICH_DB_SHARED to the folder that holds it)"
        );
        return None;
    };
    let crd_text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let crd: Value = serde_saphyr::from_str(&crd_text).expect("the CRD is YAML");
    assert_eq!(crd["spec"]["names"]["kind"], "Cluster");
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["name"], "v1");
    Some(version["schema"]["openAPIV3Schema"].clone())
}

/// What `schema` finds wrong with `value`: type, range and required-field
/// errors, and fields the schema does not declare (the API server drops
/// those, or refuses them with strict field validation, while a JSON schema
/// without `additionalProperties: false` lets them pass). Empty when it is
/// valid.
pub fn schema_errors(schema: &Value, value: &Value) -> Vec<String> {
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .build(schema)
        .expect("the CRD schema compiles");
    let mut errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    undeclared(value, schema, "", &mut errors);
    errors
}

fn undeclared(value: &Value, schema: &Value, at: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            let preserves = schema
                .get("x-kubernetes-preserve-unknown-fields")
                .and_then(Value::as_bool)
                == Some(true);
            for (key, v) in map {
                let path = format!("{at}.{key}");
                // The API server checks an object's metadata itself, as
                // ObjectMeta; the CRD only says "object".
                if path == ".metadata" {
                    continue;
                }
                match (properties.and_then(|p| p.get(key)), additional) {
                    (Some(sub), _) => undeclared(v, sub, &path, out),
                    (None, Some(sub)) if sub.is_object() => undeclared(v, sub, &path, out),
                    (None, Some(Value::Bool(true))) => {}
                    _ if preserves => {}
                    _ => out.push(path),
                }
            }
        }
        Value::Array(items) => {
            if let Some(sub) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    undeclared(v, sub, &format!("{at}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

/// The YAML documents of a manifest file, as JSON values (empty documents
/// left out).
pub fn yaml_documents(text: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(text)
        .unwrap_or_else(|e| panic!("not YAML: {e}\n{text}"))
        .into_iter()
        .filter(|v| !v.is_null())
        .collect()
}
