//! Deploy logic against the recording fakes of systemd and Podman; the real
//! parts are exercised by the tests of the `immich-db` binary.

use std::sync::Arc;
use std::time::{Duration, Instant};

use homelab_podman::{
    ExecOutput, ExecSpec, FakeRuntime, Health, HealthStatus, ImageInfo, NetworkInfo, NetworkMember,
    NetworkSubnet, Runtime as _,
};
use homelab_quadlet::PodmanVersion;
use homelab_systemd::{ActiveState, FakeManager, Manager, Scope, UnitState, Wait};

use super::apply::{Done, apply};
use super::unhealthy_containers;
use super::wait::{tcp_in_use, tcp_sockets};
use crate::backup::tests::block_on;
use crate::config::{Deployment, Loaded, Origin, parse, validate};
use crate::layer::Layer;
use crate::plan::{self, FileChange, NetworkAction, ServiceAction};
use crate::verify::Verification;

/// systemd and podman as one host: a container's service that starts runs its
/// container, healthy, on the network its network service made; one that
/// stops removes it. The databases answer logins with the stored passwords.
#[derive(Debug)]
struct World {
    fake: FakeManager,
    runtime: FakeRuntime,
    deployment: std::sync::Mutex<Deployment>,
    /// The role's password in the database, from its first start on.
    database: Password,
    /// The password Valkey read at its last start.
    valkey: Password,
}

/// A password a server holds, apart from the secret it came from.
type Password = Arc<std::sync::Mutex<Option<Vec<u8>>>>;

impl World {
    fn deployment(&self) -> Deployment {
        self.deployment.lock().unwrap().clone()
    }

    async fn network(&self) {
        let d = &self.deployment();
        if !self
            .runtime
            .network_exists(&d.podman_network())
            .await
            .unwrap()
        {
            let mut network = NetworkInfo::new(d.podman_network(), "1".repeat(64));
            network.driver = "bridge".into();
            network.subnets = vec![NetworkSubnet::new(d.subnet, Some(d.gateway))];
            network.dns_enabled = true;
            self.runtime.add_network(network);
        }
    }

    fn container_of(&self, unit: &str) -> Option<String> {
        let c = &self.deployment().config;
        [&c.postgres.container_name, &c.valkey.container_name]
            .into_iter()
            .find(|name| unit == format!("{name}.service"))
            .cloned()
    }

    /// What starting `unit` does on the host, once systemd says it is active.
    async fn started(&self, unit: &str) {
        let d = &self.deployment();
        if unit == d.network_service() {
            self.network().await;
            return;
        }
        let Some(container) = self.container_of(unit) else {
            return;
        };
        // The network's service is required: it starts first.
        let network_service = d.network_service();
        if self.fake.unit(&network_service).await.unwrap().active != ActiveState::Active {
            self.fake.set_state(&network_service, ActiveState::Active);
        }
        self.network().await;
        // PostgreSQL takes its password at its first start; Valkey at each.
        let c = &d.config;
        let (held, secret, first_only) = if container == c.postgres.container_name {
            (&self.database, &c.postgres.password_secret, true)
        } else {
            (&self.valkey, &c.valkey.password_secret, false)
        };
        let value = self
            .runtime
            .secret_value(secret)
            .map(|v| v.expose().to_vec());
        {
            let mut held = held.lock().unwrap();
            if !(first_only && held.is_some()) {
                *held = value;
            }
        }
        let mut info = crate::backup::tests::running(&container);
        info.health = Some(Health::new(HealthStatus::Healthy));
        self.runtime.add_container(info);
        let mut network = self
            .runtime
            .inspect_network(&d.podman_network())
            .await
            .unwrap();
        network.containers.insert(
            format!("{container}-id"),
            NetworkMember::new(&container, Vec::new()),
        );
        self.runtime.add_network(network);
    }

    async fn stopped(&self, unit: &str) {
        if let Some(container) = self.container_of(unit) {
            let _ = self.runtime.remove_container(&container, true).await;
        }
    }

    /// The units systemd made active run their containers.
    async fn settle(&self, units: &[String]) {
        let names: Vec<&str> = units.iter().map(String::as_str).collect();
        for state in self.fake.units(&names).await.unwrap() {
            if state.active == ActiveState::Active {
                self.started(&state.name).await;
            }
        }
    }
}

#[async_trait::async_trait]
impl Manager for World {
    fn scope(&self) -> Scope {
        self.fake.scope()
    }
    async fn reachable(&self) -> homelab_systemd::Result<()> {
        self.fake.reachable().await
    }
    async fn daemon_reload(&self) -> homelab_systemd::Result<()> {
        self.fake.daemon_reload().await
    }
    async fn start(&self, units: &[String], wait: Wait) -> homelab_systemd::Result<()> {
        self.fake.start(units, wait).await?;
        self.settle(units).await;
        Ok(())
    }
    async fn restart(&self, units: &[String], wait: Wait) -> homelab_systemd::Result<()> {
        for unit in units {
            self.stopped(unit).await;
        }
        self.fake.restart(units, wait).await?;
        self.settle(units).await;
        Ok(())
    }
    async fn stop(&self, units: &[String]) -> homelab_systemd::Result<()> {
        self.fake.stop(units).await?;
        for unit in units {
            self.stopped(unit).await;
        }
        Ok(())
    }
    async fn reset_failed(&self, units: &[String]) -> homelab_systemd::Result<()> {
        self.fake.reset_failed(units).await
    }
    async fn units(&self, units: &[&str]) -> homelab_systemd::Result<Vec<UnitState>> {
        self.fake.units(units).await
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    ctx: Layer,
    runtime: FakeRuntime,
    systemd: Arc<World>,
}

/// `psql` in the fake PostgreSQL: a login with the stored password answers
/// the server's version and its vector extension.
fn postgres_answers(held: &Password) -> impl Fn(&ExecSpec) -> ExecOutput + Send + Sync + use<> {
    let held = held.clone();
    move |spec| {
        let given = spec.stdin_bytes().unwrap_or_default();
        let known = held.lock().unwrap().as_deref() == given.strip_suffix(b"\n");
        if known {
            ExecOutput::new(0, "PostgreSQL 17.6\nvector\n", "")
        } else {
            ExecOutput::new(2, "", "FATAL:  password authentication failed\n")
        }
    }
}

/// `valkey-cli ping` in the fake Valkey: PONG with the stored password,
/// NOAUTH without one.
fn valkey_answers(held: &Password) -> impl Fn(&ExecSpec) -> ExecOutput + Send + Sync + use<> {
    let held = held.clone();
    move |spec| {
        let Some(given) = spec.stdin_bytes() else {
            return ExecOutput::new(0, "NOAUTH Authentication required.\n", "");
        };
        if held.lock().unwrap().as_deref() == given.strip_suffix(b"\n") {
            ExecOutput::new(0, "PONG\n", "")
        } else {
            ExecOutput::new(
                0,
                "",
                "AUTH failed: WRONGPASS invalid username-password pair\n",
            )
        }
    }
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
    let c = &deployment.config;
    let (database, valkey) = (Password::default(), Password::default());
    runtime.script_exec(&c.postgres.container_name, postgres_answers(&database));
    runtime.script_exec(&c.valkey.container_name, valkey_answers(&valkey));
    let systemd = Arc::new(World {
        fake: FakeManager::new(),
        runtime: runtime.clone(),
        deployment: std::sync::Mutex::new(deployment.clone()),
        database,
        valkey,
    });
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

impl Fixture {
    /// Changes the configuration, as the operator would between deploys.
    fn change(&mut self, edit: impl Fn(&mut Deployment)) {
        edit(&mut self.ctx.deployment);
        edit(&mut self.systemd.deployment.lock().unwrap());
    }
}

/// Asserts that a deploy's verification passed, listing what failed if not.
#[track_caller]
fn verified(verification: &Verification) {
    let failed: Vec<String> = verification
        .checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect();
    assert!(verification.ok, "verify failed: {failed:#?}");
    assert!(
        verification.checks.len() >= 12,
        "{} checks",
        verification.checks.len()
    );
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
        verified(&apply(&f.ctx, &plan, &mut done).await.unwrap());
        let calls = f.systemd.fake.calls();
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
        verified(&apply(&f.ctx, &again, &mut done).await.unwrap());
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
        .fake
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
    f.systemd.fake.forget_units_once();
    block_on(async {
        let plan = plan::plan(&f.ctx, false, Some(PodmanVersion::V5_4))
            .await
            .unwrap();
        verified(&apply(&f.ctx, &plan, &mut Done::new(&f.ctx)).await.unwrap());
    });
    assert_eq!(
        f.systemd.fake.calls(),
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
        verified(&apply(&f.ctx, &plan, &mut Done::new(&f.ctx)).await.unwrap());
    });
    f.change(|d| d.config.postgres.shm_size = "256m".into());
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
        let before = f.systemd.fake.calls().len();
        verified(&apply(&f.ctx, &plan, &mut Done::new(&f.ctx)).await.unwrap());
        assert_eq!(
            f.systemd.fake.calls()[before..],
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
        verified(&apply(&f.ctx, &plan, &mut Done::new(&f.ctx)).await.unwrap());
    });
    f.change(|d| {
        d.subnet = "10.99.0.0/24".parse().unwrap();
        d.gateway = "10.99.0.1".parse().unwrap();
    });
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
        let before = f.systemd.fake.calls().len();
        verified(&apply(&f.ctx, &plan, &mut Done::new(&f.ctx)).await.unwrap());
        assert_eq!(
            f.systemd.fake.calls()[before..],
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

#[test]
fn the_world_refuses_a_password_it_was_not_given() {
    // The fakes' checks are real ones: a stored password the database does
    // not have fails verify.
    let f = fixture("");
    block_on(async {
        let plan = plan::plan(&f.ctx, false, Some(PodmanVersion::V5_4))
            .await
            .unwrap();
        verified(&apply(&f.ctx, &plan, &mut Done::new(&f.ctx)).await.unwrap());
        let pg = f.ctx.deployment.config.postgres.password_secret.clone();
        let stored = f.runtime.secret_value(&pg).unwrap();
        f.runtime
            .add_secret(&pg, homelab_secrets::SecretValue::new("other"));
        let verification = crate::verify::verify(&f.ctx).await;
        assert!(!verification.ok);
        let login = verification
            .checks
            .iter()
            .find(|c| c.name == "postgres login")
            .unwrap();
        assert!(!login.ok && login.detail.contains("password authentication failed"));
        f.runtime.add_secret(&pg, stored);
        verified(&crate::verify::verify(&f.ctx).await);
    });
}

#[test]
fn a_lost_postgres_password_is_refused_before_anything_changes() {
    let f = fixture("");
    let d = f.ctx.deployment.clone();
    block_on(async {
        let plan = plan::plan(&f.ctx, false, Some(PodmanVersion::V5_4))
            .await
            .unwrap();
        verified(&apply(&f.ctx, &plan, &mut Done::new(&f.ctx)).await.unwrap());
    });
    // The database the first start initialised.
    std::fs::write(d.dirs.postgres.join("PG_VERSION"), "17\n").unwrap();
    let pg = d.config.postgres.password_secret.clone();
    block_on(f.runtime.remove_secret(&pg)).unwrap();
    let calls = f.systemd.fake.calls().len();
    let err = block_on(plan::plan(&f.ctx, false, Some(PodmanVersion::V5_4))).unwrap_err();
    assert_eq!(err.kind, crate::ErrorKind::Precondition, "{err}");
    assert!(
        err.help
            .as_deref()
            .unwrap()
            .contains(&format!("immich-db secrets set {pg}")),
        "{err}"
    );
    assert!(f.runtime.secret_value(&pg).is_none());
    assert_eq!(f.systemd.fake.calls().len(), calls);
}

#[test]
fn a_valkey_password_made_anew_restarts_valkey() {
    let f = fixture("");
    let vk = f.ctx.deployment.config.valkey.clone();
    block_on(async {
        let plan = plan::plan(&f.ctx, false, Some(PodmanVersion::V5_4))
            .await
            .unwrap();
        verified(&apply(&f.ctx, &plan, &mut Done::new(&f.ctx)).await.unwrap());
        let old = f.runtime.secret_value(&vk.password_secret).unwrap();
        f.runtime.remove_secret(&vk.password_secret).await.unwrap();
        let plan = plan::plan(&f.ctx, false, Some(PodmanVersion::V5_4))
            .await
            .unwrap();
        let actions: Vec<_> = plan.services.iter().map(|s| s.action).collect();
        assert_eq!(actions, [ServiceAction::Keep, ServiceAction::Restart]);
        assert!(plan.services[1].reason.contains("password"), "{plan}");
        let before = f.systemd.fake.calls().len();
        verified(&apply(&f.ctx, &plan, &mut Done::new(&f.ctx)).await.unwrap());
        assert_eq!(
            f.systemd.fake.calls()[before..],
            [
                "daemon-reload".to_owned(),
                format!("restart {}.service", vk.container_name)
            ]
        );
        assert_ne!(f.runtime.secret_value(&vk.password_secret).unwrap(), old);
    });
}
