//! The rendered manifests against independent oracles: CloudNativePG's own CRD
//! schema for the `Cluster`, k8s-openapi's types for everything else, and the
//! files on disk for secrets and modes.

// Test code: a failed unwrap is a failed test, helpers included.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt as _;

use base64::Engine as _;
use homelab_kube::{
    CLUSTER_FILE, DatabaseLayer, Error, README_FILE, Rendered, SECRETS_FILE, SecretValues, Secrets,
    VALKEY_FILE, WriteOptions, cnpg,
};
use homelab_secrets::SecretValue;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret, Service};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Distinct values no manifest would contain by chance.
const CANARY_PG: &str = "canaryPgZq81VwX";
const CANARY_REDIS: &str = "canaryRedisKp27Tj";
const CANARY_JWT: &str = "canaryJwtHv93Rm";

fn values() -> SecretValues {
    SecretValues::new(SecretValue::new(CANARY_PG), SecretValue::new(CANARY_JWT))
        .with_redis_password(SecretValue::new(CANARY_REDIS))
}

/// Every form in which a canary could be written: as is, and base64 in a
/// Secret's `data`.
fn canary_forms() -> Vec<String> {
    [CANARY_PG, CANARY_REDIS, CANARY_JWT]
        .iter()
        .flat_map(|c| {
            [
                (*c).to_owned(),
                base64::engine::general_purpose::STANDARD.encode(c),
            ]
        })
        .collect()
}

/// The YAML documents of a file, as JSON values.
fn documents(text: &str) -> Vec<Value> {
    immich_db_testhost::cnpg::yaml_documents(text)
}

fn content<'a>(rendered: &'a Rendered, name: &str) -> &'a str {
    rendered
        .file(name)
        .unwrap_or_else(|| panic!("{name} was not rendered"))
        .content()
}

fn cluster_schema(test: &str) -> Option<Value> {
    immich_db_testhost::cnpg::cluster_schema(test)
}

fn schema_errors(schema: &Value, cluster: &Value) -> Vec<String> {
    immich_db_testhost::cnpg::schema_errors(schema, cluster)
}

fn rendered_cluster(layer: &DatabaseLayer) -> Value {
    let rendered = layer.render(Secrets::Referenced).unwrap();
    let docs = documents(content(&rendered, CLUSTER_FILE));
    assert_eq!(docs.len(), 1, "{CLUSTER_FILE} holds one object");
    docs.into_iter().next().unwrap()
}

#[test]
fn cluster_validates_against_cloudnative_pg_schema() {
    let Some(schema) = cluster_schema("cluster_validates_against_cloudnative_pg_schema") else {
        return;
    };

    let mut full = DatabaseLayer::default();
    full.postgres.instances = 3;
    full.postgres.storage_class = Some("local-path".into());
    full.postgres.initdb_args =
        "--data-checksums -E UTF8 --locale=C.UTF-8 --lc-collate C --lc-ctype C --wal-segsize=32"
            .into();
    let icu = {
        let mut l = DatabaseLayer::default();
        l.postgres.initdb_args = "-k --locale-provider=icu --icu-locale=en-US".into();
        l
    };
    for (what, layer) in [
        ("defaults", DatabaseLayer::default()),
        ("every option", full),
        ("ICU locale", icu),
    ] {
        let cluster = rendered_cluster(&layer);
        let errors = schema_errors(&schema, &cluster);
        assert!(
            errors.is_empty(),
            "{what}: the Cluster breaks CloudNativePG's schema:\n{}",
            errors.join("\n")
        );
    }

    // What the defaults carry, read back through the schema-checked value.
    let cluster = rendered_cluster(&DatabaseLayer::default());
    assert_eq!(cluster["apiVersion"], "postgresql.cnpg.io/v1");
    let initdb = &cluster["spec"]["bootstrap"]["initdb"];
    assert_eq!(initdb["database"], "immich");
    assert_eq!(initdb["owner"], "immich");
    assert_eq!(initdb["secret"]["name"], "postgres-password");
    assert_eq!(initdb["dataChecksums"], true);
    assert_eq!(
        initdb["postInitApplicationSQL"],
        serde_json::json!([
            "CREATE EXTENSION IF NOT EXISTS \"vchord\" CASCADE",
            "CREATE EXTENSION IF NOT EXISTS \"earthdistance\" CASCADE"
        ])
    );
    assert_eq!(
        cluster["spec"]["postgresql"]["shared_preload_libraries"],
        serde_json::json!(["vchord.so"])
    );
    assert_eq!(cluster["spec"]["storage"]["size"], "10Gi");
    assert_eq!(
        cluster["spec"]["imageName"],
        homelab_kube::DEFAULT_POSTGRES_IMAGE
    );

    // Negative controls: the check catches a wrong type, a value out of range
    // and a misspelt field.
    let mut wrong_type = cluster.clone();
    wrong_type["spec"]["instances"] = Value::from("one");
    assert!(!schema_errors(&schema, &wrong_type).is_empty());
    let mut out_of_range = cluster.clone();
    out_of_range["spec"]["bootstrap"]["initdb"]["walSegmentSize"] = Value::from(4096);
    assert!(!schema_errors(&schema, &out_of_range).is_empty());
    let mut misspelt = cluster.clone();
    misspelt["spec"]["bootstrap"]["initdb"]["dataCheckSums"] = Value::from(true);
    let errors = schema_errors(&schema, &misspelt);
    assert_eq!(errors, [".spec.bootstrap.initdb.dataCheckSums"]);

    // The metadata is an ObjectMeta.
    let _: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta =
        round_trip(&cluster["metadata"]);

    // The crate's own types read the file back unchanged.
    let typed: cnpg::Cluster = serde_json::from_value(cluster.clone()).unwrap();
    assert_eq!(serde_json::to_value(&typed).unwrap(), cluster);
}

/// Deserialises `doc` into `T` and checks that serialising it again gives the
/// same document: no field that the type does not know.
fn round_trip<T: DeserializeOwned + Serialize>(doc: &Value) -> T {
    let typed: T = serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{e}: {doc:#}"));
    let again = serde_json::to_value(&typed).unwrap();
    assert_eq!(&again, doc, "fields lost in the typed object");
    typed
}

#[test]
fn other_objects_deserialise_into_kubernetes_types() {
    let mut layer = DatabaseLayer::default();
    layer.valkey.storage_class = Some("local-path".into());
    let rendered = layer.render(Secrets::Included(&values())).unwrap();

    let valkey = documents(content(&rendered, VALKEY_FILE));
    let kinds: Vec<_> = valkey.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["PersistentVolumeClaim", "Deployment", "Service"]);
    let claim: PersistentVolumeClaim = round_trip(&valkey[0]);
    let deployment: Deployment = round_trip(&valkey[1]);
    let service: Service = round_trip(&valkey[2]);
    for doc in &valkey {
        assert_eq!(doc["metadata"]["namespace"], "immich");
    }

    // The Deployment mounts the claim and the Secret that the other objects name.
    let claim_name = claim.metadata.name.unwrap();
    let pod = deployment.spec.unwrap().template.spec.unwrap();
    let volumes = pod.volumes.unwrap();
    assert!(volumes.iter().any(|v| {
        v.persistent_volume_claim
            .as_ref()
            .is_some_and(|c| c.claim_name == claim_name)
    }));
    assert!(volumes.iter().any(
        |v| v.secret.as_ref().and_then(|s| s.secret_name.as_deref()) == Some("redis-password")
    ));
    // The password is not in the container's command line or environment.
    let container = &pod.containers[0];
    assert!(container.env.is_none() && container.env_from.is_none());
    let probes = [
        (container.startup_probe.as_ref().unwrap(), 1, 900),
        (container.readiness_probe.as_ref().unwrap(), 30, 5),
        (container.liveness_probe.as_ref().unwrap(), 30, 5),
    ];
    for (probe, period, failures) in probes {
        assert_eq!(probe.period_seconds, Some(period));
        assert_eq!(probe.timeout_seconds, Some(5));
        assert_eq!(probe.failure_threshold, Some(failures));
    }
    // The Service selects the Deployment's pods.
    let selector = service.spec.unwrap().selector.unwrap();
    let labels = pod_labels(&valkey[1]);
    assert!(
        selector
            .iter()
            .all(|(k, v)| labels.get(k).and_then(Value::as_str) == Some(v.as_str()))
    );

    let secrets = documents(content(&rendered, SECRETS_FILE));
    let secrets: Vec<Secret> = secrets.iter().map(round_trip).collect();
    let postgres = &secrets[0];
    assert_eq!(postgres.type_.as_deref(), Some("kubernetes.io/basic-auth"));
    let data = postgres.data.as_ref().unwrap();
    assert_eq!(data["username"].0, b"immich");
    assert_eq!(data["password"].0, CANARY_PG.as_bytes());
    assert_eq!(
        secrets[1].data.as_ref().unwrap()["password"].0,
        CANARY_REDIS.as_bytes()
    );
    assert_eq!(
        secrets[2].data.as_ref().unwrap()["secret"].0,
        CANARY_JWT.as_bytes()
    );
}

fn pod_labels(deployment: &Value) -> serde_json::Map<String, Value> {
    deployment["spec"]["template"]["metadata"]["labels"]
        .as_object()
        .unwrap()
        .clone()
}

#[test]
fn no_secret_value_without_include_secrets() {
    let layer = DatabaseLayer::default();
    let rendered = layer.render(Secrets::Referenced).unwrap();
    assert!(rendered.file(SECRETS_FILE).is_none());
    for file in rendered.files() {
        assert!(!file.holds_secrets(), "{}", file.name());
        for canary in canary_forms() {
            assert!(!file.content().contains(&canary), "{}", file.name());
        }
    }
    // On disk too, with the directory as the oracle.
    let dir = tempfile::tempdir().unwrap();
    rendered.write_to(dir.path(), &WriteOptions::new()).unwrap();
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let entry = entry.unwrap();
        let text = std::fs::read_to_string(entry.path()).unwrap();
        for canary in canary_forms() {
            assert!(!text.contains(&canary));
        }
        names.push(entry.file_name().into_string().unwrap());
    }
    names.sort();
    assert_eq!(names, [CLUSTER_FILE, VALKEY_FILE, README_FILE]);

    // Positive control: with the values included, the same search finds each
    // canary, in the one file that holds secrets, and in no other.
    let rendered = layer.render(Secrets::Included(&values())).unwrap();
    let encode = |c: &str| base64::engine::general_purpose::STANDARD.encode(c);
    for file in rendered.files() {
        let holds = [CANARY_PG, CANARY_REDIS, CANARY_JWT]
            .iter()
            .all(|c| file.content().contains(&encode(c)));
        assert_eq!(holds, file.name() == SECRETS_FILE, "{}", file.name());
        assert_eq!(file.holds_secrets(), file.name() == SECRETS_FILE);
    }
    // Nor does any Debug output show them.
    let debug = format!("{rendered:?} {:?}", values());
    for canary in canary_forms() {
        assert!(!debug.contains(&canary));
    }
}

#[test]
fn files_are_written_with_their_modes() {
    let rendered = DatabaseLayer::default()
        .render(Secrets::Included(&values()))
        .unwrap();
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("k8s");
    let report = rendered.write_to(&dir, &WriteOptions::new()).unwrap();
    assert_eq!(report.written.len(), 4);
    for written in &report.written {
        let mode = std::fs::metadata(&written.path)
            .unwrap()
            .permissions()
            .mode()
            & 0o7777;
        let name = written.path.file_name().unwrap().to_str().unwrap();
        let want = if name == SECRETS_FILE { 0o600 } else { 0o644 };
        assert_eq!(mode, want, "{name}");
        assert_eq!(written.mode, want);
        assert_eq!(written.holds_secrets, name == SECRETS_FILE);
        assert_eq!(
            std::fs::read_to_string(&written.path).unwrap(),
            rendered.file(name).unwrap().content()
        );
    }
    // No temporary file is left.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 4);
}

#[test]
fn a_foreign_file_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let readme = dir.path().join(README_FILE);
    std::fs::write(&readme, "# My notes\n").unwrap();
    let rendered = DatabaseLayer::default()
        .render(Secrets::Referenced)
        .unwrap();

    let err = rendered
        .write_to(dir.path(), &WriteOptions::new())
        .unwrap_err();
    assert!(matches!(&err, Error::ForeignFile { path } if *path == readme));
    assert!(
        err.to_string().contains("not written by immich-db"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&readme).unwrap(), "# My notes\n");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    let report = rendered
        .write_to(dir.path(), &WriteOptions::new().replace_foreign(true))
        .unwrap();
    assert_eq!(report.written.len(), 3);
    assert!(
        std::fs::read_to_string(&readme)
            .unwrap()
            .contains("Written by immich-db")
    );
}

#[test]
fn a_second_render_replaces_its_own_files_and_reports_earlier_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let mut layer = DatabaseLayer::default();
    layer
        .render(Secrets::Included(&values()))
        .unwrap()
        .write_to(dir.path(), &WriteOptions::new())
        .unwrap();

    layer.postgres.storage_size = "50Gi".into();
    let report = layer
        .render(Secrets::Referenced)
        .unwrap()
        .write_to(dir.path(), &WriteOptions::new())
        .unwrap();
    assert_eq!(report.written.len(), 3);
    assert_eq!(report.left_in_place, [dir.path().join(SECRETS_FILE)]);
    let cluster = std::fs::read_to_string(dir.path().join(CLUSTER_FILE)).unwrap();
    assert!(cluster.contains("size: 50Gi"));
}

#[test]
fn a_file_in_place_of_the_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out");
    std::fs::write(&file, "x").unwrap();
    let err = DatabaseLayer::default()
        .render(Secrets::Referenced)
        .unwrap()
        .write_to(&file, &WriteOptions::new())
        .unwrap_err();
    assert!(matches!(err, Error::NotADirectory { .. }), "{err}");
}

#[test]
fn bad_input_is_refused_with_the_field() {
    let mut layer = DatabaseLayer::default();
    layer.postgres.initdb_args = "--data-checksums --auth=trust".into();
    let err = layer.render(Secrets::Referenced).unwrap_err();
    assert!(err.to_string().contains("postgres.initdb_args"), "{err}");

    let mut layer = DatabaseLayer::default();
    layer.valkey.name = "Redis_Immich".into();
    let err = layer.render(Secrets::Referenced).unwrap_err();
    assert!(err.to_string().contains("valkey.name"), "{err}");

    // Included Secrets need Valkey's password when Valkey requires one.
    let layer = DatabaseLayer::default();
    let partial = SecretValues::new(SecretValue::new("a"), SecretValue::new("b"));
    let err = layer.render(Secrets::Included(&partial)).unwrap_err();
    assert!(matches!(err, Error::MissingSecretValue { ref secret } if secret == "redis-password"));
    let spaced = values().with_redis_password(SecretValue::new("two words"));
    let err = layer.render(Secrets::Included(&spaced)).unwrap_err();
    assert!(matches!(err, Error::InvalidSecretValue { .. }), "{err}");
    assert!(!err.to_string().contains("two words"));
}

#[test]
fn valkey_without_password_has_no_secret() {
    let mut layer = DatabaseLayer::default();
    layer.valkey.require_password = false;
    let partial = SecretValues::new(SecretValue::new(CANARY_PG), SecretValue::new(CANARY_JWT));
    let rendered = layer.render(Secrets::Included(&partial)).unwrap();
    let valkey = content(&rendered, VALKEY_FILE);
    assert!(!valkey.contains("redis-password") && !valkey.contains("requirepass"));
    let deployment: Deployment = round_trip(&documents(valkey)[1]);
    assert!(
        deployment.spec.unwrap().template.spec.unwrap().containers[0]
            .args
            .is_none()
    );
    let secrets = documents(content(&rendered, SECRETS_FILE));
    assert_eq!(secrets.len(), 2);
    assert!(
        rendered
            .notes()
            .contains(&homelab_kube::Note::ValkeyWithoutPassword)
    );
    assert!(!content(&rendered, README_FILE).contains("REDIS_PASSWORD"));
}

#[test]
fn readme_says_where_immich_connects() {
    let mut layer = DatabaseLayer::default();
    layer.namespace = "photos".into();
    layer.postgres.image = "ghcr.io/immich-app/postgres:14-vectorchord0.4.3-pgvectors0.2.0".into();
    let rendered = layer.render(Secrets::Referenced).unwrap();
    let readme = content(&rendered, README_FILE);
    for needle in [
        "DB_HOSTNAME: postgresql-immich-rw.photos.svc",
        "DB_USERNAME: immich",
        "DB_DATABASE_NAME: immich",
        "REDIS_HOSTNAME: redis-immich.photos.svc",
        "REDIS_PASSWORD:",
        "name: postgres-password",
        "name: redis-password",
        "kubectl apply -f .",
        "immich-db restore --target postgresql://immich@127.0.0.1:15432/immich --password-stdin",
        "immich-db render --kubernetes --output DIR",
        "cannot run under Podman",
        "--type=kubernetes.io/basic-auth",
    ] {
        assert!(
            readme.contains(needle),
            "README lacks {needle:?}:\n{readme}"
        );
    }
    // The image that CloudNativePG cannot run is pointed out.
    assert!(matches!(
        rendered.notes(),
        [homelab_kube::Note::PodmanPostgresImage { .. }]
    ));
    assert!(readme.contains(homelab_kube::DEFAULT_POSTGRES_IMAGE));
}
