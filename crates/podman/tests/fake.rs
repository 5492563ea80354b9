//! The recording fake: it behaves as podman does for the state it keeps, records
//! every call without secret values, and answers what the test scripts.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt as _;
use homelab_podman::{
    Call, ContainerEvent, ContainerInfo, ContainerNetwork, ContainerState, ContainerStats,
    ContainerStatus, Error, EventFilter, EventKind, EventType, ExecOutput, ExecSpec, FakeRuntime,
    Health, HealthStatus, ImageInfo, LogLine, LogStream, NetworkSpec, ObjectKind, Operation,
    Runtime, SecretOptions,
};
use homelab_secrets::{Ensured, Policy, SecretStore, SecretValue, ensure, near_duplicates_in};

fn container(name: &str, running: bool, health: Option<HealthStatus>) -> ContainerInfo {
    let mut state = ContainerState::new(if running {
        ContainerStatus::Running
    } else {
        ContainerStatus::Exited
    });
    state.pid = running.then_some(42);
    state.started_at = Some(SystemTime::now() - Duration::from_secs(60));
    let mut network = ContainerNetwork::new(std::net::Ipv4Addr::new(10, 89, 5, 2).into(), 24);
    network.gateway = Some(std::net::Ipv4Addr::new(10, 89, 5, 1).into());
    let mut info = ContainerInfo::new(
        format!("{name}0123456789"),
        name,
        "localhost/test:latest",
        state,
    );
    info.health = health.map(Health::new);
    info.networks = BTreeMap::from([("photos".to_owned(), network)]);
    info
}

#[tokio::test]
async fn networks_behave_as_podman_and_calls_are_recorded() {
    let fake = FakeRuntime::new();
    let spec = NetworkSpec::new("photos")
        .subnet("10.89.5.0/24".parse().unwrap())
        .gateway("10.89.5.1".parse().unwrap());
    let created = fake.create_network(&spec).await.unwrap();
    assert_eq!(fake.inspect_network("photos").await.unwrap(), created);
    assert!(matches!(
        fake.create_network(&spec).await,
        Err(Error::AlreadyExists {
            kind: ObjectKind::Network,
            ..
        })
    ));
    // Invalid specs are refused before anything changes.
    let bad = NetworkSpec::new("bad name");
    assert!(matches!(
        fake.create_network(&bad).await,
        Err(Error::InvalidNetwork { .. })
    ));
    assert!(!fake.network_exists("bad name").await.unwrap());

    let overlaps = fake
        .overlapping_networks(&"10.89.5.128/25".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(overlaps.len(), 1);
    assert!(
        fake.overlapping_networks(&"10.89.6.0/24".parse().unwrap())
            .await
            .unwrap()
            .is_empty()
    );

    // A network with a container on it cannot go.
    fake.add_container(container("pg", true, None));
    assert!(matches!(
        fake.remove_network("photos").await,
        Err(Error::InUse { .. })
    ));
    fake.remove_container("pg", true).await.unwrap();
    fake.remove_network("photos").await.unwrap();
    assert!(
        fake.remove_network("photos")
            .await
            .unwrap_err()
            .is_not_found()
    );

    assert_eq!(
        fake.calls_to(Operation::CreateNetwork),
        ["photos", "photos", "bad name"]
    );
    assert_eq!(
        fake.calls().last(),
        Some(&Call::new(
            Operation::RemoveNetwork,
            Some("photos".into()),
            Vec::<String>::new()
        ))
    );
}

#[tokio::test]
async fn the_subnet_of_a_quadlet_network_unit_is_the_one_podman_gets() {
    // One CIDR type for both crates: the value read from the unit goes to
    // podman as it is.
    let unit = homelab_quadlet::NetworkUnit::parse(
        "photos.network",
        "[Network]\nSubnet=10.89.5.0/24\nGateway=10.89.5.1\n",
    )
    .unwrap();
    let subnet: homelab_podman::IpNet = unit.network.subnet[0];
    let fake = FakeRuntime::new();
    let spec = NetworkSpec::new("systemd-photos")
        .subnet(subnet)
        .gateway(unit.network.gateway[0]);
    let created = fake.create_network(&spec).await.unwrap();
    assert_eq!(created.subnets[0].subnet, subnet);
    let wide = homelab_quadlet::parse_ip_net("10.89.0.0/16").unwrap();
    let found = fake.overlapping_networks(&wide).await.unwrap();
    assert_eq!(
        (found[0].network.as_str(), found[0].subnet),
        ("systemd-photos", subnet)
    );
}

#[tokio::test]
async fn containers_answer_what_the_test_scripts() {
    let fake = FakeRuntime::new();
    fake.add_container(container("pg", true, Some(HealthStatus::Starting)));
    fake.add_container(container("old", false, None));

    // Health: scripted results in order, the last one repeating.
    fake.script_health(
        "pg",
        [HealthStatus::Starting, HealthStatus::Healthy].map(Health::new),
    );
    assert_eq!(
        fake.run_health_check("pg").await.unwrap().status,
        HealthStatus::Starting
    );
    assert_eq!(
        fake.run_health_check("pg").await.unwrap().status,
        HealthStatus::Healthy
    );
    assert_eq!(
        fake.run_health_check("pg").await.unwrap().status,
        HealthStatus::Healthy
    );
    assert!(matches!(
        fake.run_health_check("old").await,
        Err(Error::NoHealthCheck { .. })
    ));
    // By ID prefix too, as podman does.
    assert_eq!(fake.inspect_container("pg01234").await.unwrap().name, "pg");

    // Commands: scripted per container; standard input reaches the script.
    fake.script_exec("pg", |spec| {
        ExecOutput::new(
            0,
            spec.stdin_bytes().unwrap_or_default(),
            spec.command().join(" "),
        )
    });
    let out = fake
        .exec(
            "pg",
            &ExecSpec::new(["psql", "-c", "SELECT 1"])
                .stdin("pw")
                .env("K", "v"),
        )
        .await
        .unwrap();
    assert_eq!(
        (out.stdout.as_slice(), out.stderr_text().as_str()),
        (&b"pw"[..], "psql -c SELECT 1")
    );
    assert!(matches!(
        fake.exec("old", &ExecSpec::new(["true"])).await,
        Err(Error::Rejected { status: 409, .. })
    ));
    fake.add_container(container("vk", true, None));
    assert_eq!(
        fake.exec("vk", &ExecSpec::new(["x"]))
            .await
            .unwrap()
            .exit_code,
        127
    );
    let recorded = fake
        .calls()
        .into_iter()
        .find(|c| c.operation == Operation::Exec)
        .unwrap();
    assert_eq!(recorded.args, ["psql", "-c", "SELECT 1"]);
    assert!(!format!("{:?}", fake.calls()).contains("pw\""));

    // Statistics and logs.
    let mut stats = ContainerStats::default();
    stats.memory_current = 930 << 20;
    stats.memory_peak = Some(983 << 20);
    fake.set_stats("pg", stats);
    assert_eq!(
        fake.container_stats("pg").await.unwrap().memory_peak,
        Some(983 << 20)
    );
    assert!(matches!(
        fake.container_stats("old").await,
        Err(Error::StatsUnavailable { .. })
    ));
    let line = |t: &str| LogLine::new(LogStream::Stderr, t);
    fake.set_logs("pg", vec![line("a"), line("b"), line("c")]);
    assert_eq!(
        fake.container_logs("pg", 2).await.unwrap(),
        [line("b"), line("c")]
    );
    assert_eq!(fake.container_logs("pg", 10).await.unwrap().len(), 3);
    assert!(
        fake.container_logs("nope", 1)
            .await
            .unwrap_err()
            .is_not_found()
    );
}

#[tokio::test]
async fn scripted_failures_come_once_in_order() {
    let fake = FakeRuntime::new();
    fake.fail_next(
        Operation::ImageExists,
        Error::Timeout {
            operation: "check whether an image exists",
            name: None,
            after: Duration::from_secs(1),
        },
    );
    assert!(matches!(
        fake.image_exists("x").await,
        Err(Error::Timeout { .. })
    ));
    assert!(!fake.image_exists("x").await.unwrap());
    let mut image = ImageInfo::new("sha");
    image.tags = vec!["docker.io/valkey/valkey:8".into()];
    image.size = 1;
    fake.add_image(&image);
    assert!(
        fake.image_exists("docker.io/valkey/valkey:8")
            .await
            .unwrap()
    );
    assert_eq!(
        fake.inspect_image("docker.io/valkey/valkey:8")
            .await
            .unwrap()
            .id,
        "sha"
    );
    assert!(
        fake.inspect_image("other")
            .await
            .unwrap_err()
            .is_not_found()
    );
}

#[tokio::test]
async fn the_fake_pulls_what_is_published_and_fails_like_an_unreachable_registry() {
    let fake = FakeRuntime::new();
    let reference = "docker.io/valkey/valkey:8";
    let e = fake.pull_image(reference).await.unwrap_err();
    assert!(
        matches!(&e, Error::PullFailed { image, .. } if image == reference),
        "{e:?}"
    );
    assert!(!fake.image_exists(reference).await.unwrap());
    let mut image = ImageInfo::new("sha");
    image.tags = vec![reference.into()];
    image.size = 1;
    fake.publish_image(&image);
    assert!(!fake.image_exists(reference).await.unwrap());
    assert_eq!(fake.pull_image(reference).await.unwrap().id, "sha");
    assert!(fake.image_exists(reference).await.unwrap());
    let e = fake.pull_image("Valkey:8").await.unwrap_err();
    assert!(matches!(e, Error::InvalidImageReference { .. }), "{e:?}");
    assert_eq!(
        fake.calls_to(Operation::PullImage),
        [reference, reference, "Valkey:8"]
    );
}

#[tokio::test]
async fn secrets_work_with_the_secrets_crate_and_are_never_recorded() {
    let fake = FakeRuntime::new();
    fake.add_secret("redis_password", SecretValue::new("left over"));
    let store: &dyn SecretStore = &fake;
    assert_eq!(
        ensure(store, "postgres-password", &Policy::postgres_password())
            .await
            .unwrap(),
        Ensured::Created
    );
    let value = fake.secret_value("postgres-password").unwrap();
    assert!(matches!(
        ensure(store, "postgres-password", &Policy::postgres_password())
            .await
            .unwrap(),
        Ensured::Kept { .. }
    ));
    assert_eq!(fake.secret_value("postgres-password").unwrap(), value);
    store
        .create("redis-password", &SecretValue::new("x"))
        .await
        .unwrap();
    let pairs = near_duplicates_in(store).await.unwrap();
    assert_eq!(
        (pairs[0].first.as_str(), pairs[0].second.as_str()),
        ("redis-password", "redis_password")
    );
    // Replace keeps the ID; a plain create refuses.
    let before = fake.inspect_secret("redis-password").await.unwrap();
    let replace = SecretOptions {
        replace: true,
        ..SecretOptions::default()
    };
    let after = fake
        .create_secret("redis-password", &SecretValue::new("y"), &replace)
        .await
        .unwrap();
    assert_eq!(before.id, after.id);
    assert_eq!(
        fake.read_secret("redis-password").await.unwrap().expose(),
        b"y"
    );
    let recorded = format!("{:?} {fake:?}", fake.calls());
    assert!(!recorded.contains(std::str::from_utf8(value.expose()).unwrap()));
    assert!(!recorded.contains("left over"));
}

#[tokio::test]
async fn events_are_filtered_like_podmans() {
    let fake = FakeRuntime::new();
    let event = |name: &str, kind: EventKind| {
        ContainerEvent::new(SystemTime::now(), format!("{name}-id"), name, kind)
    };
    fake.push_event(event("pg", EventKind::Started));
    fake.push_event(event("pg", EventKind::HealthStatus(HealthStatus::Healthy)));
    fake.push_event(event("vk", EventKind::Died { exit_code: Some(1) }));
    fake.push_event(event("pg", EventKind::Restarted));
    let got: Vec<_> = fake
        .events(&EventFilter::container("pg"))
        .await
        .unwrap()
        .map(|e| e.unwrap().kind)
        .collect()
        .await;
    assert_eq!(
        got,
        [
            EventKind::HealthStatus(HealthStatus::Healthy),
            EventKind::Restarted
        ]
    );
    let got: Vec<_> = fake
        .events(&EventFilter::default().types([EventType::Died, EventType::Start]))
        .await
        .unwrap()
        .map(|e| e.unwrap().container_name)
        .collect()
        .await;
    assert_eq!(got, ["pg", "vk"]);
}
