//! The runtime against rootless podman: a `podman system service` run as the
//! test host's ordinary user (`immich-db-rootless`), reached over its socket.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use homelab_podman::{
    CgroupVersion, ConnectOptions, Error, ExecSpec, Fallback, HealthStatus, NetworkSpec, Podman,
    Runtime, SecretOptions,
};
use homelab_secrets::{SecretStore, SecretValue, near_duplicates_in};
use immich_db_testhost::{Host, require_host, unique_name};

/// A rootless podman service with its own runtime directory; removes what the
/// test registered, then stops the service and its pause process, when dropped.
struct Rootless {
    user: String,
    runtime_dir: PathBuf,
    created_dir: bool,
    socket: PathBuf,
    service: Child,
    containers: Vec<String>,
    networks: Vec<String>,
    secrets: Vec<String>,
    // Held for the life of the service; see `start`.
    _exclusive: std::fs::File,
}

impl Rootless {
    fn start() -> Self {
        // Two runs of this test at once (two checkouts tested on one host)
        // would share the user's runtime directory and pause process, and each
        // stops the pause process when it ends: they take turns.
        let lock_path = std::env::temp_dir().join("idbt-rootless-test.lock");
        let exclusive = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .unwrap_or_else(|e| panic!("open {}: {e}", lock_path.display()));
        rustix::fs::flock(&exclusive, rustix::fs::FlockOperation::LockExclusive)
            .unwrap_or_else(|e| panic!("lock {}: {e}", lock_path.display()));
        let user = std::env::var("IMMICH_DB_TEST_ROOTLESS_USER")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "immich-db-rootless".to_owned());
        // The runtime directory logind would give the user: rootless podman records
        // its paths in its database on first use, so it must stay the same from one
        // run to the next.
        let uid = Command::new("id")
            .args(["-u", &user])
            .output()
            .expect("run id");
        assert!(
            uid.status.success(),
            "no user {user}: run scripts/provision"
        );
        let uid = String::from_utf8_lossy(&uid.stdout).trim().to_owned();
        let runtime_dir = PathBuf::from(format!("/run/user/{uid}"));
        let created_dir = !runtime_dir.exists();
        std::fs::create_dir_all(&runtime_dir).expect("create the runtime directory");
        let status = Command::new("chown")
            .arg(format!("{user}:"))
            .arg(&runtime_dir)
            .status()
            .expect("run chown");
        assert!(status.success(), "chown {user} {}", runtime_dir.display());
        std::fs::set_permissions(
            &runtime_dir,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .expect("chmod the runtime directory");
        let socket = runtime_dir.join(unique_name("podman") + ".sock");
        let service = Self::command_for(&user, &runtime_dir)
            .args(["system", "service", "--time=0"])
            .arg(format!("unix://{}", socket.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the rootless podman service");
        Self {
            user,
            runtime_dir,
            created_dir,
            socket,
            service,
            containers: Vec::new(),
            networks: Vec::new(),
            secrets: Vec::new(),
            _exclusive: exclusive,
        }
    }

    fn socket(&self) -> PathBuf {
        self.socket.clone()
    }

    fn command_for(user: &str, runtime_dir: &Path) -> Command {
        let mut cmd = Command::new("runuser");
        // Root's session bus is not the user's.
        cmd.args(["-u", user, "--", "env", "-u", "DBUS_SESSION_BUS_ADDRESS"])
            .arg(format!("XDG_RUNTIME_DIR={}", runtime_dir.display()))
            .args(["PODMAN_IGNORE_CGROUPSV1_WARNING=1", "podman"])
            .current_dir("/")
            .stdin(Stdio::null());
        cmd
    }

    /// `podman ARGS` as the rootless user.
    fn podman(&self, args: &[&str]) -> Output {
        Self::command_for(&self.user, &self.runtime_dir)
            .args(args)
            .output()
            .expect("run rootless podman")
    }

    fn podman_ok(&self, args: &[&str]) -> String {
        let out = self.podman(args);
        assert!(
            out.status.success(),
            "rootless podman {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Copies a root image into the rootless user's storage, once.
    fn ensure_image(&self, host: &Host, image: &str) {
        if self.podman(&["image", "exists", image]).status.success() {
            return;
        }
        let mut save = host
            .command("podman")
            .args(["save", image])
            .stdout(Stdio::piped())
            .spawn()
            .expect("podman save");
        let load = Self::command_for(&self.user, &self.runtime_dir)
            .args(["load", "--quiet"])
            .stdin(save.stdout.take().expect("save's output"))
            .output()
            .expect("rootless podman load");
        assert!(save.wait().expect("podman save").success());
        assert!(
            load.status.success(),
            "{}",
            String::from_utf8_lossy(&load.stderr)
        );
    }

    async fn connect(&self) -> Podman {
        let options = ConnectOptions::new()
            .socket(self.socket())
            .fallback(Fallback::Fail)
            .ping_timeout(Duration::from_secs(2));
        let start = Instant::now();
        loop {
            match Podman::connect_with(&options).await {
                Ok(p) => return p,
                Err(e) if start.elapsed() < Duration::from_secs(30) => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("the rootless service does not answer: {e}"),
            }
        }
    }
}

impl Drop for Rootless {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = self.podman(&["rm", "--force", "--time", "0", c]);
        }
        for n in &self.networks {
            let _ = self.podman(&["network", "rm", "--force", n]);
        }
        for s in &self.secrets {
            let _ = self.podman(&["secret", "rm", s]);
        }
        // runuser passes SIGTERM on to the service and waits for it.
        if let Some(pid) = i32::try_from(self.service.id())
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && matches!(self.service.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.service.kill();
        let _ = self.service.wait();
        // The user namespace's pause process, started by that service.
        let pause = std::fs::read_to_string(self.runtime_dir.join("libpod/tmp/pause.pid"))
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
            .and_then(rustix::process::Pid::from_raw);
        if let Some(pid) = pause {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
        let _ = std::fs::remove_file(&self.socket);
        if self.created_dir {
            let _ = std::fs::remove_dir_all(&self.runtime_dir);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rootless_podman_networks_secrets_and_containers() {
    let host = require_host!();
    let mut rootless = Rootless::start();
    let podman = rootless.connect().await;

    let info = podman.host_info().await.unwrap();
    assert!(info.rootless, "{info:?}");
    assert!(info.version.at_least(5, 0));
    let cgroup_version = info.cgroup_version.clone();

    // Networks (the rootless network namespace, through pasta).
    let network = unique_name("rlnet");
    rootless.networks.push(network.clone());
    // A subnet none of the user's networks has (one left behind by a killed
    // run may hold another).
    let used = podman.list_networks().await.unwrap();
    let octet = (0..=255u8)
        .map(|i| i.wrapping_mul(37).wrapping_add(77))
        .find(|o| {
            let candidate = homelab_podman::parse_cidr(&format!("10.214.{o}.0/24")).unwrap();
            homelab_podman::find_overlaps(&candidate, &used).is_empty()
        })
        .expect("a free subnet in 10.214.0.0/16");
    let subnet = format!("10.214.{octet}.0/24");
    let created = podman
        .create_network(
            &NetworkSpec::new(&network)
                .subnet(homelab_podman::parse_cidr(&subnet).unwrap())
                .gateway(format!("10.214.{octet}.1").parse().unwrap())
                .label("rootless", "yes"),
        )
        .await
        .unwrap();
    assert_eq!(podman.inspect_network(&network).await.unwrap(), created);
    let overlaps = podman
        .overlapping_networks(&"10.214.0.0/16".parse().unwrap())
        .await
        .unwrap();
    assert!(
        overlaps.iter().any(|o| o.network == network),
        "{overlaps:?}"
    );
    let cli = rootless.podman_ok(&[
        "network",
        "inspect",
        "--format",
        "{{range .Subnets}}{{.Subnet}}{{end}}",
        &network,
    ]);
    assert_eq!(cli.trim(), subnet);
    // Root's podman does not see the user's network.
    assert!(
        !host
            .podman(["network", "exists", &network])
            .status
            .success()
    );

    // Secrets: exact bytes, the user's own store.
    let secret = unique_name("rlsecret");
    let twin = secret.replace("rlsecret", "rl_secret");
    let lookalike = secret.replace("rlsecret", "rl-secret");
    for s in [&secret, &twin, &lookalike] {
        rootless.secrets.push(s.clone());
    }
    let value = SecretValue::new("abc+/=\"\\\n");
    podman
        .create_secret(&secret, &value, &SecretOptions::default())
        .await
        .unwrap();
    let stored = rootless.podman(&[
        "secret",
        "inspect",
        "--showsecret",
        "--format",
        "{{.SecretData}}",
        &secret,
    ]);
    assert_eq!(stored.stdout, b"abc+/=\"\\\n\n");
    assert_eq!(podman.read_secret(&secret).await.unwrap(), value);
    assert!(!host.podman(["secret", "exists", &secret]).status.success());
    let store: &dyn SecretStore = &podman;
    store.create(&twin, &SecretValue::new("1")).await.unwrap();
    store
        .create(&lookalike, &SecretValue::new("2"))
        .await
        .unwrap();
    let pairs = near_duplicates_in(store).await.unwrap();
    assert!(
        pairs
            .iter()
            .any(|p| [&p.first, &p.second] == [&lookalike, &twin]),
        "{pairs:?}"
    );
    podman.remove_secret(&twin).await.unwrap();
    assert!(!podman.secret_exists(&twin).await.unwrap());
    assert!(
        podman
            .list_secrets()
            .await
            .unwrap()
            .iter()
            .any(|s| s.name == secret)
    );

    // A container, on rootless podman's default network (pasta).
    rootless.ensure_image(host, &host.valkey_image);
    assert!(podman.image_exists(&host.valkey_image).await.unwrap());
    let container = unique_name("rlctr");
    rootless.containers.push(container.clone());
    rootless.podman_ok(&[
        "run",
        "-d",
        "--name",
        &container,
        "--health-cmd",
        "valkey-cli ping",
        "--health-interval",
        "1h",
        &host.valkey_image,
    ]);
    let inspected = podman.inspect_container(&container).await.unwrap();
    assert!(inspected.state.running);
    assert!(inspected.state.started_at.is_some());
    // The health check passes once Valkey listens, a moment after the start.
    immich_db_testhost::wait_for(
        &format!("Valkey in {container} to answer"),
        Duration::from_secs(30),
        || {
            let out = rootless.podman(&["exec", &container, "valkey-cli", "ping"]);
            String::from_utf8_lossy(&out.stdout)
                .contains("PONG")
                .then_some(())
        },
    );
    let health = podman.run_health_check(&container).await.unwrap();
    assert_eq!(health.status, HealthStatus::Healthy);
    let out = podman
        .exec(
            &container,
            &ExecSpec::new(["sh", "-c", "cat; valkey-cli ping"]).stdin("in:"),
        )
        .await
        .unwrap();
    assert_eq!(
        (out.exit_code, out.stdout_text().as_str()),
        (0, "in:PONG\n")
    );
    let logs = podman.container_logs(&container, 50).await.unwrap();
    assert!(
        logs.iter()
            .any(|l| l.text.contains("Ready to accept connections")),
        "{logs:?}"
    );

    // Statistics need a cgroup of the container's own: rootless podman has one
    // only on cgroup v2. On v1 (this test host) the error says so.
    match (cgroup_version, podman.container_stats(&container).await) {
        (CgroupVersion::V1, Err(Error::StatsUnavailable { reason, .. })) => {
            assert!(
                reason.contains("cgroup v2") || reason.contains("cgroups v2"),
                "{reason}"
            );
        }
        (CgroupVersion::V2, Ok(stats)) => assert!(stats.memory_current > 0),
        (v, other) => panic!("cgroup {v}: unexpected statistics answer {other:?}"),
    }

    podman.remove_container(&container, true).await.unwrap();
    podman.remove_network(&network).await.unwrap();
    assert!(!podman.network_exists(&network).await.unwrap());
}
