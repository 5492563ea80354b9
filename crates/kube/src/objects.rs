//! The Kubernetes objects of the database layer, as typed values.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, ExecAction, KeyToPath, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, SeccompProfile, Secret, SecretVolumeSource, SecurityContext, Service,
    ServicePort, ServiceSpec, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::cnpg;
use crate::error::Error;
use crate::initdb;
use crate::spec::{DatabaseLayer, SecretValues};

/// Valkey's port, in the container and on its Service.
pub(crate) const VALKEY_PORT: i32 = 6379;
/// Where the Valkey password's Secret is mounted.
pub(crate) const VALKEY_SECRET_DIR: &str = "/run/secrets/valkey";
/// The key of a password in the Valkey and PostgreSQL Secrets.
pub(crate) const PASSWORD_KEY: &str = "password";
/// The key of the user name in the PostgreSQL Secret.
pub(crate) const USERNAME_KEY: &str = "username";
/// The key of Immich's signing key in its Secret.
pub(crate) const JWT_KEY: &str = "secret";

/// Where Valkey's data volume is mounted: the image's working directory, where
/// the server writes its snapshots.
const VALKEY_DATA_DIR: &str = "/data";

/// Labels every object carries; the first two select Valkey's pod.
fn labels(name: &str, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), component.to_owned()),
        ("app.kubernetes.io/instance".to_owned(), name.to_owned()),
        ("app.kubernetes.io/part-of".to_owned(), "immich".to_owned()),
        (
            "app.kubernetes.io/managed-by".to_owned(),
            "immich-db".to_owned(),
        ),
    ])
}

fn selector(name: &str, component: &str) -> BTreeMap<String, String> {
    labels(name, component)
        .into_iter()
        .filter(|(k, _)| k == "app.kubernetes.io/name" || k == "app.kubernetes.io/instance")
        .collect()
}

/// The metadata of an object called `name`, part of `instance` (a Valkey
/// Deployment and its claim are one instance).
fn meta(layer: &DatabaseLayer, name: &str, instance: &str, component: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(layer.namespace.clone()),
        labels: Some(labels(instance, component)),
        ..ObjectMeta::default()
    }
}

/// The SQL that creates the extensions Immich needs, each with those it
/// depends on. Names are checked identifiers, quoted all the same.
fn create_extensions(extensions: &[String]) -> Vec<String> {
    extensions
        .iter()
        .map(|e| format!("CREATE EXTENSION IF NOT EXISTS \"{e}\" CASCADE"))
        .collect()
}

/// The CloudNativePG `Cluster`.
pub(crate) fn cluster(layer: &DatabaseLayer) -> Result<cnpg::Cluster, Error> {
    let pg = &layer.postgres;
    let settings = initdb::parse(&pg.initdb_args)?;
    let initdb = cnpg::Initdb {
        database: pg.database.clone(),
        owner: pg.owner.clone(),
        secret: Some(cnpg::SecretReference::new(&layer.secrets.postgres_password)),
        data_checksums: settings.data_checksums.then_some(true),
        encoding: settings.encoding,
        locale: settings.locale,
        locale_collate: settings.locale_collate,
        locale_ctype: settings.locale_ctype,
        locale_provider: settings.locale_provider,
        icu_locale: settings.icu_locale,
        wal_segment_size: settings.wal_segment_size,
        // As a superuser, once: Immich's role owns the database but may not
        // create these extensions itself.
        post_init_application_sql: create_extensions(&pg.extensions),
    };
    Ok(cnpg::Cluster {
        api_version: cnpg::API_VERSION.to_owned(),
        kind: cnpg::KIND.to_owned(),
        metadata: meta(layer, &pg.name, &pg.name, "postgresql"),
        spec: cnpg::ClusterSpec {
            instances: i64::from(pg.instances),
            image_name: pg.image.clone(),
            postgresql: (!pg.shared_preload_libraries.is_empty()).then(|| {
                cnpg::PostgresConfiguration {
                    shared_preload_libraries: pg.shared_preload_libraries.clone(),
                }
            }),
            bootstrap: cnpg::Bootstrap { initdb },
            storage: cnpg::Storage {
                size: pg.storage_size.clone(),
                storage_class: pg.storage_class.clone(),
            },
        },
    })
}

/// The name of Valkey's volume claim.
pub(crate) fn valkey_claim_name(layer: &DatabaseLayer) -> String {
    format!("{}-data", layer.valkey.name)
}

/// Valkey's data volume.
pub(crate) fn valkey_claim(layer: &DatabaseLayer) -> PersistentVolumeClaim {
    let vk = &layer.valkey;
    PersistentVolumeClaim {
        metadata: meta(layer, &valkey_claim_name(layer), &vk.name, "valkey"),
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_owned(),
                    Quantity(vk.storage_size.clone()),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            storage_class_name: vk.storage_class.clone(),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}

/// Valkey's command, given to the image's entrypoint as arguments (as Podman's
/// `Exec=` does): the server reads its `requirepass` line from standard input,
/// a FIFO that this shell opens both ways, fills from the mounted Secret and
/// closes, then the shell becomes the server. So the password is in no
/// process's arguments, no environment variable and no file but the mounted
/// Secret; `read` and `printf` are shell built-ins, and the FIFO is unlinked
/// before the server starts.
pub(crate) fn valkey_server_script() -> String {
    format!(
        "f=/tmp/valkey-config; rm -f \"$f\"; mkfifo -m 600 \"$f\" &&\n\
         exec 3<>\"$f\" 4<\"$f\" && rm -f \"$f\" &&\n\
         {{ IFS= read -r p || [ -n \"$p\" ]; }} <{VALKEY_SECRET_DIR}/{PASSWORD_KEY} &&\n\
         printf 'requirepass %s\\n' \"$p\" >&3 &&\n\
         exec valkey-server - <&4 4<&- 3>&-\n"
    )
}

/// Valkey's health check: PING answers PONG with the password (without it,
/// Valkey answers `NOAUTH`, which `valkey-cli` also exits 0 for). The password
/// goes to `valkey-cli` in its environment, read from the mounted Secret.
pub(crate) fn valkey_health_script(require_password: bool) -> String {
    if require_password {
        format!(
            "{{ IFS= read -r REDISCLI_AUTH || [ -n \"$REDISCLI_AUTH\" ]; }} <{VALKEY_SECRET_DIR}/{PASSWORD_KEY} &&\n\
             export REDISCLI_AUTH &&\n\
             test \"$(valkey-cli --no-auth-warning ping)\" = PONG\n"
        )
    } else {
        "test \"$(valkey-cli ping)\" = PONG\n".to_owned()
    }
}

/// The Quadlet units' health checks: a startup check every second (900 tries,
/// as `HealthStartupRetries=`), then every 30 seconds, 5 seconds to answer, 5
/// failures in a row before the check counts as failed.
fn probe(script: &str, period_seconds: i32, failure_threshold: i32) -> Probe {
    Probe {
        exec: Some(ExecAction {
            command: Some(vec!["sh".to_owned(), "-c".to_owned(), script.to_owned()]),
        }),
        period_seconds: Some(period_seconds),
        timeout_seconds: Some(5),
        failure_threshold: Some(failure_threshold),
        ..Probe::default()
    }
}

/// Valkey's Deployment: one pod at a time (`Recreate`: its volume can be
/// mounted by one node only), as an unprivileged user.
pub(crate) fn valkey_deployment(layer: &DatabaseLayer) -> Deployment {
    let vk = &layer.valkey;
    let run_as = i64::from(vk.run_as);
    let health = valkey_health_script(vk.require_password);
    let mut volumes = vec![Volume {
        name: "data".to_owned(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name: valkey_claim_name(layer),
            ..PersistentVolumeClaimVolumeSource::default()
        }),
        ..Volume::default()
    }];
    let mut mounts = vec![VolumeMount {
        name: "data".to_owned(),
        mount_path: VALKEY_DATA_DIR.to_owned(),
        ..VolumeMount::default()
    }];
    let mut args = None;
    if vk.require_password {
        volumes.push(Volume {
            name: "password".to_owned(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(layer.secrets.redis_password.clone()),
                items: Some(vec![KeyToPath {
                    key: PASSWORD_KEY.to_owned(),
                    path: PASSWORD_KEY.to_owned(),
                    ..KeyToPath::default()
                }]),
                // Read-only, readable by the server's user whoever owns the
                // file: Podman mounts it as root and ignores `fsGroup`. Only
                // this one container sees it (Kubernetes' default is 0644).
                default_mode: Some(0o444),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        });
        mounts.push(VolumeMount {
            name: "password".to_owned(),
            mount_path: VALKEY_SECRET_DIR.to_owned(),
            read_only: Some(true),
            ..VolumeMount::default()
        });
        args = Some(vec![
            "sh".to_owned(),
            "-c".to_owned(),
            valkey_server_script(),
        ]);
    }
    let container = Container {
        name: "valkey".to_owned(),
        image: Some(vk.image.clone()),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        args,
        ports: Some(vec![ContainerPort {
            name: Some("valkey".to_owned()),
            container_port: VALKEY_PORT,
            protocol: Some("TCP".to_owned()),
            ..ContainerPort::default()
        }]),
        volume_mounts: Some(mounts),
        startup_probe: Some(probe(&health, 1, 900)),
        readiness_probe: Some(probe(&health, 30, 5)),
        liveness_probe: Some(probe(&health, 30, 5)),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    };
    Deployment {
        metadata: meta(layer, &vk.name, &vk.name, "valkey"),
        // `Option` up to Kubernetes 1.36's types, required from 1.37's.
        spec: DeploymentSpec {
            replicas: Some(1),
            selector: LabelSelector {
                match_labels: Some(selector(&vk.name, "valkey")),
                ..LabelSelector::default()
            },
            strategy: Some(DeploymentStrategy {
                type_: Some("Recreate".to_owned()),
                ..DeploymentStrategy::default()
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(&vk.name, "valkey")),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    volumes: Some(volumes),
                    // Service variables such as REDIS_PORT would land in the
                    // server's environment; nothing here reads them.
                    enable_service_links: Some(false),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(run_as),
                        run_as_group: Some(run_as),
                        fs_group: Some(run_as),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".to_owned(),
                            ..SeccompProfile::default()
                        }),
                        ..PodSecurityContext::default()
                    }),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }
        .into(),
        ..Deployment::default()
    }
}

/// Valkey's Service: the host name Immich connects to.
pub(crate) fn valkey_service(layer: &DatabaseLayer) -> Service {
    let vk = &layer.valkey;
    Service {
        metadata: meta(layer, &vk.name, &vk.name, "valkey"),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            selector: Some(selector(&vk.name, "valkey")),
            ports: Some(vec![ServicePort {
                name: Some("valkey".to_owned()),
                port: VALKEY_PORT,
                target_port: Some(IntOrString::String("valkey".to_owned())),
                protocol: Some("TCP".to_owned()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// A Secret holding `data`.
fn secret(layer: &DatabaseLayer, name: &str, type_: &str, data: Vec<(&str, &[u8])>) -> Secret {
    Secret {
        metadata: meta(layer, name, name, "secret"),
        type_: Some(type_.to_owned()),
        data: Some(
            data.into_iter()
                .map(|(k, v)| (k.to_owned(), ByteString(v.to_vec())))
                .collect(),
        ),
        ..Secret::default()
    }
}

/// The Secrets with their values: PostgreSQL's in the form CloudNativePG
/// reads, Valkey's (when it requires a password) and Immich's signing key.
pub(crate) fn secrets(layer: &DatabaseLayer, values: &SecretValues) -> Result<Vec<Secret>, Error> {
    let names = &layer.secrets;
    let mut out = Vec::new();
    let postgres = values.postgres_password.expose();
    if postgres.is_empty() {
        return Err(Error::InvalidSecretValue {
            secret: names.postgres_password.clone(),
            reason: "the password is empty",
        });
    }
    out.push(secret(
        layer,
        &names.postgres_password,
        "kubernetes.io/basic-auth",
        vec![
            (USERNAME_KEY, layer.postgres.owner.as_bytes()),
            (PASSWORD_KEY, postgres),
        ],
    ));
    if layer.valkey.require_password {
        let Some(redis) = &values.redis_password else {
            return Err(Error::MissingSecretValue {
                secret: names.redis_password.clone(),
            });
        };
        let redis = redis.expose();
        // The server reads it as one word of a configuration line.
        if redis.is_empty()
            || redis.iter().any(|b| {
                b.is_ascii_whitespace() || b.is_ascii_control() || matches!(b, b'"' | b'\'')
            })
        {
            return Err(Error::InvalidSecretValue {
                secret: names.redis_password.clone(),
                reason: "Valkey's password must be one word: no spaces, quotes or control characters",
            });
        }
        out.push(secret(
            layer,
            &names.redis_password,
            "Opaque",
            vec![(PASSWORD_KEY, redis)],
        ));
    }
    out.push(secret(
        layer,
        &names.immich_jwt_secret,
        "Opaque",
        vec![(JWT_KEY, values.immich_jwt_secret.expose())],
    ));
    Ok(out)
}
