//! Deploy logic against the recording fakes of systemd and Podman; the real
//! parts are exercised by the tests of the `immich-db` binary.

use std::sync::Arc;
use std::time::{Duration, Instant};

use homelab_podman::{FakeRuntime, HealthStatus, ImageInfo, NetworkInfo, NetworkSubnet};
use homelab_quadlet::PodmanVersion;
use homelab_systemd::{FakeManager, Manager as _, Wait};

use super::apply::{Done, apply};
use super::unhealthy_containers;
use super::wait::{tcp_in_use, tcp_sockets};
use crate::backup::tests::block_on;
use crate::config::{Loaded, Origin, parse, validate};
use crate::layer::Layer;
use crate::plan::{self, FileChange, NetworkAction, ServiceAction};

struct Fixture {
    _dir: tempfile::TempDir,
    ctx: Layer,
    runtime: FakeRuntime,
    systemd: Arc<FakeManager>,
}

fn fixture(extra: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[storage]\npool = {:?}\n[systemd]\nunit_dir = {:?}\n{extra}",
        dir.path().join("pool").display().to_string(),
        dir.path().join("units").display().to_string(),
    );
    std::fs::create_dir(dir.path().join("pool")).unwrap();
    let loaded: Loaded = parse(&text, Origin::Defaults).unwrap();
    let deployment = validate(&loaded).unwrap();
    let runtime = FakeRuntime::new();
    for image in [
        &deployment.config.postgres.image,
        &deployment.config.valkey.image,
    ] {
        let mut info = ImageInfo::new("0".repeat(64));
        info.tags = vec![image.clone()];
        info.size = 1;
        runtime.add_image(&info);
    }
    let systemd = Arc::new(FakeManager::new());
    let ctx = Layer::new(
        deployment,
        systemd.clone(),
        Arc::new(runtime.clone()),
        Arc::new(runtime.clone()),
    )
    .with_runtime_dir(dir.path());
    Fixture {
        _dir: dir,
        ctx,
        runtime,
        systemd,
    }
}

/// What the network service would create (it starts with the containers).
async fn network_created(f: &Fixture) {
    let d = &f.ctx.deployment;
    let _ = f.systemd.start(&[d.network_service()], Wait::Done).await;
    let mut network = NetworkInfo::new(d.podman_network(), "1".repeat(64));
    network.driver = "bridge".into();
    network.subnets = vec![NetworkSubnet::new(d.subnet, Some(d.gateway))];
    network.dns_enabled = true;
    f.runtime.add_network(network);
}

#[test]
fn from_nothing_then_no_changes() {
    let f = fixture("");
    block_on(async {
        let plan = plan::plan(&f.ctx, false, Some(PodmanVersion::V5_4))
            .await
            .unwrap();
        assert!(plan.units.iter().all(|u| u.change == FileChange::Create));
        assert!(plan.secrets.iter().all(|s| !s.exists));
        assert!(plan.daemon_reload);
        assert_eq!(plan.network, NetworkAction::Create);
        assert!(
            plan.services
                .iter()
                .all(|s| s.action == ServiceAction::Start)
        );

        let mut done = Done::new(&f.ctx);
        let _ = apply(&f.ctx, &plan, &mut done).await.unwrap();
        let calls = f.systemd.calls();
        assert_eq!(
            calls,
            [
                "daemon-reload",
                "start postgresql-immich.service",
                "start redis-immich.service",
            ]
        );
        for unit in &plan.units {
            assert_eq!(
                std::fs::read_to_string(&unit.path).unwrap(),
                unit.unit.content
            );
        }
        let pg = f.runtime.secret_value("postgres-password").unwrap();
        assert!(pg.expose().iter().all(u8::is_ascii_alphanumeric));
        assert!(f.runtime.secret_value("redis-password").is_some());
        assert!(f.runtime.secret_value("immich-jwt-secret").is_some());

        network_created(&f).await;
        let again = plan::plan(&f.ctx, false, Some(PodmanVersion::V5_4))
            .await
            .unwrap();
        assert!(again.is_empty(), "{again}");
        assert_eq!(
            again.to_string(),
            "No changes: the deployment is as configured."
        );
        // Secrets are never regenerated.
        let mut done = Done::new(&f.ctx);
        let _ = apply(&f.ctx, &again, &mut done).await.unwrap();
        assert_eq!(f.runtime.secret_value("postgres-password").unwrap(), pg);
    });
}

#[test]
fn nothing_to_change_still_needs_healthy_containers() {
    let f = fixture("");
    let with_health = |name: &str, status: HealthStatus| {
        let mut info = crate::backup::tests::running(name);
        info.health = Some(homelab_podman::Health::new(status));
        info
    };
    block_on(async {
        let missing = unhealthy_containers(&f.ctx).await;
        assert_eq!(missing.len(), 2, "{missing:?}");
        f.runtime
            .add_container(with_health("postgresql-immich", HealthStatus::Healthy));
        f.runtime
            .add_container(with_health("redis-immich", HealthStatus::Unhealthy));
        assert_eq!(
            unhealthy_containers(&f.ctx).await,
            ["redis-immich is unhealthy"]
        );
        f.runtime
            .add_container(with_health("redis-immich", HealthStatus::Healthy));
        assert!(unhealthy_containers(&f.ctx).await.is_empty());
    });
}

#[test]
fn tcp_sockets_are_counted_from_the_kernel_socket_counts() {
    let v4 = "sockets: used 2\nTCP: inuse 1 orphan 0 tw 0 alloc 3 mem 0\nUDP: inuse 0 mem 0\n";
    let v6 = "TCP6: inuse 2\nUDP6: inuse 0\n";
    let none = "sockets: used 0\nTCP: inuse 0 orphan 0 tw 4 alloc 1 mem 0\n";
    assert_eq!(tcp_sockets(v4), 1);
    assert_eq!(tcp_sockets(v6), 2);
    assert_eq!(tcp_sockets(none), 0);
    assert_eq!(tcp_sockets("UDP: inuse 3 mem 0\n"), 0);
    // This process's own counts can be read; a process that does not
    // exist has none.
    assert!(tcp_in_use(std::process::id()).is_some());
    assert_eq!(tcp_in_use(u32::MAX), None);
}

#[test]
fn a_failed_network_service_fails_the_deploy_at_once() {
    // Its containers' start jobs are dropped and they stay inactive: the
    // deploy says so instead of waiting for them until its time limit.
    let f = fixture("");
    f.systemd
        .fail_dependency(&f.ctx.deployment.network_service());
    block_on(async {
        let plan = plan::plan(&f.ctx, false, Some(PodmanVersion::V5_4))
            .await
            .unwrap();
        let started = Instant::now();
        let err = apply(&f.ctx, &plan, &mut Done::new(&f.ctx))
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(err.what.contains("photos-network.service failed"), "{err}");
        assert!(err.what.contains("systemd-photos"), "{err}");
    });
}

#[test]
fn units_unknown_after_the_reload_are_reloaded_once_more() {
    let f = fixture("");
    f.systemd.forget_units_once();
    block_on(async {
        let plan = plan::plan(&f.ctx, false, Some(PodmanVersion::V5_4))
            .await
            .unwrap();
        apply(&f.ctx, &plan, &mut Done::new(&f.ctx)).await.unwrap();
    });
    assert_eq!(
        f.systemd.calls(),
        [
            "daemon-reload",
            "start postgresql-immich.service",
            "daemon-reload",
            "start postgresql-immich.service",
            "start redis-immich.service",
        ]
    );
}

#[test]
fn only_the_changed_unit_restarts() {
    let mut f = fixture("");
    block_on(async {
        let plan = plan::plan(&f.ctx, false, Some(PodmanVersion::V5_4))
            .await
            .unwrap();
        let _ = apply(&f.ctx, &plan, &mut Done::new(&f.ctx)).await.unwrap();
        network_created(&f).await;
    });
    f.ctx.deployment.config.postgres.shm_size = "256m".into();
    block_on(async {
        let plan = plan::plan(&f.ctx, false, Some(PodmanVersion::V5_4))
            .await
            .unwrap();
        let pg = &plan.units[1];
        let FileChange::Update { diff } = &pg.change else {
            panic!("{:?}", pg.change)
        };
        assert!(
            diff.contains("-ShmSize=128m") && diff.contains("+ShmSize=256m"),
            "{diff}"
        );
        assert_eq!(plan.units[2].change, FileChange::Unchanged);
        let actions: Vec<_> = plan.services.iter().map(|s| s.action).collect();
        assert_eq!(actions, [ServiceAction::Restart, ServiceAction::Keep]);
        assert_eq!(plan.network, NetworkAction::Keep);
        assert!(plan.daemon_reload);
        let before = f.systemd.calls().len();
        let _ = apply(&f.ctx, &plan, &mut Done::new(&f.ctx)).await.unwrap();
        assert_eq!(
            f.systemd.calls()[before..],
            ["daemon-reload", "restart postgresql-immich.service"]
        );
    });
}

#[test]
fn a_changed_subnet_recreates_the_network_and_restarts_both() {
    let mut f = fixture("");
    block_on(async {
        let plan = plan::plan(&f.ctx, false, Some(PodmanVersion::V5_4))
            .await
            .unwrap();
        let _ = apply(&f.ctx, &plan, &mut Done::new(&f.ctx)).await.unwrap();
        network_created(&f).await;
    });
    f.ctx.deployment.subnet = "10.99.0.0/24".parse().unwrap();
    f.ctx.deployment.gateway = "10.99.0.1".parse().unwrap();
    block_on(async {
        let plan = plan::plan(&f.ctx, false, Some(PodmanVersion::V5_4))
            .await
            .unwrap();
        assert!(
            matches!(plan.network, NetworkAction::Recreate { .. }),
            "{:?}",
            plan.network
        );
        assert!(
            plan.services
                .iter()
                .all(|s| s.action == ServiceAction::Restart)
        );
        let before = f.systemd.calls().len();
        let _ = apply(&f.ctx, &plan, &mut Done::new(&f.ctx)).await.unwrap();
        assert_eq!(
            f.systemd.calls()[before..],
            [
                "daemon-reload",
                "stop postgresql-immich.service redis-immich.service",
                "stop photos-network.service",
                "start photos-network.service",
                "start postgresql-immich.service",
                "start redis-immich.service",
            ]
        );
        assert_eq!(
            f.runtime.calls_to(homelab_podman::Operation::RemoveNetwork),
            ["systemd-photos"]
        );
    });
}
