//! The runtime against the test host's real podman, rootful, over root's user
//! socket (and over private services this library starts).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt as _;
use homelab_podman::{
    ConnectOptions, Error, EventFilter, EventKind, EventType, ExecSpec, Fallback, HealthStatus,
    IpNet, LogStream, NetworkSpec, ObjectKind, Podman, Runtime, parse_cidr,
};
use immich_db_testhost::{Cleanup, Host, require_host, unique_name};

async fn connect(host: &Host) -> Podman {
    let socket = host.runtime_dir.join("podman/podman.sock");
    Podman::connect_with(
        &ConnectOptions::new()
            .socket(socket)
            .fallback(Fallback::Fail),
    )
    .await
    .expect("root's user socket answers")
}

fn cli_json(host: &Host, args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&host.podman_ok(args)).expect("podman prints JSON")
}

/// Whether podman refused a network because another one has its subnet: a
/// test running alongside took the subnet between `free_subnet` and the create.
fn subnet_taken(message: &str) -> bool {
    message.contains("subnet") && message.contains("already used")
}

/// Creates a network with `podman network create` on a free subnet (with the
/// gateway as its DNS server when `dns`), trying another subnet when a test
/// running alongside took the one found free. Returns the subnet and gateway.
fn create_cli_network(host: &Host, name: &str, dns: bool) -> (String, String) {
    for _ in 0..20 {
        let (subnet, gateway) = host.free_subnet();
        let mut args = vec![
            "network",
            "create",
            "--subnet",
            &subnet,
            "--gateway",
            &gateway,
        ];
        if dns {
            args.extend(["--dns", &gateway]);
        }
        args.push(name);
        let out = host.podman(&args);
        if out.status.success() {
            return (subnet, gateway);
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(subnet_taken(&stderr), "podman {args:?}: {stderr}");
    }
    panic!("no free subnet for network {name} after 20 tries");
}

fn pid_alive(pid: u32) -> bool {
    // A reaped process has no /proc entry; a zombie would say "Z".
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !s.split(") ").nth(1).is_some_and(|r| r.starts_with('Z')))
}

#[tokio::test(flavor = "multi_thread")]
async fn default_connection_finds_roots_user_socket_and_reports_the_host() {
    let host = require_host!();
    // /run/podman/podman.sock does not exist on the test host: the default
    // order falls through to $XDG_RUNTIME_DIR/podman/podman.sock.
    let podman = Podman::connect_with(&ConnectOptions::new().fallback(Fallback::Fail))
        .await
        .unwrap();
    assert!(podman.private_service().is_none());
    assert!(
        podman.socket().starts_with(&host.runtime_dir),
        "{:?}",
        podman.socket()
    );

    let info = podman.host_info().await.unwrap();
    let cli = cli_json(host, &["info", "--format", "json"]);
    assert_eq!(
        info.version.version,
        cli["version"]["Version"].as_str().unwrap()
    );
    assert!(info.version.at_least(5, 0), "{info:?}");
    assert!(!info.rootless);
    assert_eq!(
        info.cgroup_version.to_string(),
        cli["host"]["cgroupVersion"].as_str().unwrap()
    );
    assert_eq!(
        info.network_backend,
        cli["host"]["networkBackend"].as_str().unwrap()
    );
    assert_eq!(info.oci_runtime, "runc");
    let version = podman.version().await.unwrap();
    assert_eq!(version, info.version);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_fallback_fail_a_dead_socket_names_the_command_to_run() {
    let _host = require_host!();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("podman.sock");
    let e = Podman::connect_with(
        &ConnectOptions::new()
            .socket(&socket)
            .fallback(Fallback::Fail),
    )
    .await
    .unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, Error::NoService { .. }), "{e:?}");
    assert!(
        text.contains("systemctl --user start podman.socket"),
        "{text}"
    );
    assert!(text.contains(&socket.display().to_string()), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_socket_a_private_service_serves_and_stops_on_drop() {
    let host = require_host!();
    let dir = tempfile::tempdir().unwrap();
    let podman = Podman::connect_with(&ConnectOptions::new().socket(dir.path().join("none.sock")))
        .await
        .unwrap();
    let service = podman.private_service().expect("a private service");
    let pid = service.pid();
    let socket = service.socket().to_owned();
    assert!(pid_alive(pid));
    assert_eq!(podman.socket(), socket);
    assert!(
        service
            .command()
            .contains("system service --time=0 unix://")
    );
    // Its directory is private to this user.
    let private_dir = socket.parent().unwrap().parent().unwrap().to_owned();
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&private_dir).unwrap().permissions(),
    );
    assert_eq!(mode & 0o077, 0, "{mode:o}");

    // It is the same podman: a container the CLI creates is there, and a
    // secret made through it is in the CLI's store. (Only what this test made
    // is compared: other tests create and remove objects meanwhile.)
    let mut cleanup = Cleanup::new(host);
    let container = unique_name("private-ctr");
    cleanup.container(&container);
    host.podman_ok(["create", "--name", &container, &host.valkey_image]);
    assert!(podman.container_exists(&container).await.unwrap());
    let created = podman.inspect_container(&container).await.unwrap();
    let cli = cli_json(host, &["container", "inspect", &container]);
    assert_eq!(created.id, cli[0]["Id"].as_str().unwrap());
    let secret = unique_name("private-secret");
    cleanup.secret(&secret);
    let through_private = podman
        .create_secret(
            &secret,
            &homelab_secrets::SecretValue::new("not a real secret"),
            &homelab_podman::SecretOptions::default(),
        )
        .await
        .unwrap();
    let cli = cli_json(host, &["secret", "inspect", &secret]);
    assert_eq!(through_private.id, cli[0]["ID"].as_str().unwrap());
    drop(cleanup);
    assert!(!podman.container_exists(&container).await.unwrap());

    // A clone shares it; the last drop stops it and removes its socket.
    let clone = podman.clone();
    drop(podman);
    assert!(pid_alive(pid));
    clone.version().await.unwrap();
    drop(clone);
    assert!(
        !pid_alive(pid),
        "the private service {pid} outlived its connection"
    );
    assert!(!socket.exists());
    assert!(!private_dir.exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn network_create_inspect_overlap_remove() {
    let host = require_host!();
    let podman = connect(host).await;
    let name = unique_name("net");
    let mut cleanup = Cleanup::new(host);
    cleanup.network(&name);

    // Invalid specs are refused before podman sees them: nothing is created.
    let bad = NetworkSpec::new(&name)
        .subnet("10.213.0.0/24".parse().unwrap())
        .gateway("10.0.0.1".parse().unwrap());
    assert!(matches!(
        podman.create_network(&bad).await,
        Err(Error::InvalidNetwork {
            field: "gateway",
            ..
        })
    ));
    assert!(!podman.network_exists(&name).await.unwrap());

    // The gateway (this machine's end of the bridge) as the network's DNS server:
    // no address outside this machine. A subnet that a test running alongside
    // takes first is refused, with nothing created, and another is tried.
    let mut tries = 0;
    let (spec, created, subnet, gateway) = loop {
        let (subnet, gateway) = host.free_subnet();
        let subnet: IpNet = parse_cidr(&subnet).unwrap();
        let gateway: IpAddr = gateway.parse().unwrap();
        let spec = NetworkSpec::new(&name)
            .subnet(subnet)
            .gateway(gateway)
            .label("purpose", "homelab-podman test")
            .dns(gateway)
            .internal(true);
        match podman.create_network(&spec).await {
            Ok(created) => break (spec, created, subnet, gateway),
            Err(Error::Rejected { message, .. }) if subnet_taken(&message) && tries < 20 => {
                assert!(!podman.network_exists(&name).await.unwrap());
                tries += 1;
            }
            Err(e) => panic!("create network {name}: {e:?}"),
        }
    };
    let inspected = podman.inspect_network(&name).await.unwrap();
    assert_eq!(created, inspected);
    assert_eq!(inspected.subnets.len(), 1);
    assert_eq!(inspected.subnets[0].subnet, subnet);
    assert_eq!(inspected.subnets[0].gateway, Some(gateway));
    assert_eq!(inspected.dns_servers, [gateway]);
    assert!(inspected.internal);
    assert!(inspected.dns_enabled);
    assert_eq!(inspected.labels["purpose"], "homelab-podman test");

    // podman's own view agrees.
    let cli = cli_json(host, &["network", "inspect", &name]);
    let cli = &cli[0];
    assert_eq!(cli["id"].as_str().unwrap(), inspected.id);
    assert_eq!(
        cli["subnets"][0]["subnet"].as_str().unwrap(),
        subnet.to_string()
    );
    assert_eq!(
        cli["subnets"][0]["gateway"].as_str().unwrap(),
        gateway.to_string()
    );
    assert_eq!(
        cli["network_dns_servers"][0].as_str().unwrap(),
        gateway.to_string()
    );
    assert_eq!(cli["internal"], true);

    assert!(podman.network_exists(&name).await.unwrap());
    assert!(
        podman
            .list_networks()
            .await
            .unwrap()
            .iter()
            .any(|n| n.name == name)
    );

    // Overlaps: the same subnet, a wider one, a narrower one; not a neighbour.
    let wide = parse_cidr(&format!("{}/16", subnet.addr()))
        .unwrap()
        .trunc();
    let narrow = parse_cidr(&format!("{gateway}/30")).unwrap().trunc();
    for probe in [subnet, wide, narrow] {
        let found = podman.overlapping_networks(&probe).await.unwrap();
        assert!(
            found
                .iter()
                .any(|o| o.network == name && o.subnet == subnet),
            "{probe}: {found:?}"
        );
    }
    let neighbour = parse_cidr("10.214.0.0/24").unwrap();
    let found = podman.overlapping_networks(&neighbour).await.unwrap();
    assert!(!found.iter().any(|o| o.network == name), "{found:?}");

    // A second create is refused and changes nothing.
    let again = podman.create_network(&spec.clone().internal(false)).await;
    assert!(
        matches!(
            &again,
            Err(Error::AlreadyExists {
                kind: ObjectKind::Network,
                ..
            })
        ),
        "{again:?}"
    );
    assert!(podman.inspect_network(&name).await.unwrap().internal);

    podman.remove_network(&name).await.unwrap();
    assert!(!podman.network_exists(&name).await.unwrap());
    assert!(!host.podman(["network", "exists", &name]).status.success());
    assert!(
        podman
            .remove_network(&name)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        podman
            .inspect_network(&name)
            .await
            .unwrap_err()
            .is_not_found()
    );
}

/// Runs a Valkey container with a health check on a network of its own.
fn run_valkey(host: &Host, cleanup: &mut Cleanup, name: &str, network: &str) {
    cleanup.network(network);
    create_cli_network(host, network, false);
    cleanup.container(name);
    host.podman_ok([
        "run",
        "-d",
        "--name",
        name,
        "--network",
        network,
        "--health-cmd",
        "valkey-cli ping",
        "--health-interval",
        "1h",
        &host.valkey_image,
    ]);
    // Its health check passes once Valkey listens, a moment after the start.
    immich_db_testhost::wait_for(
        &format!("Valkey in {name} to answer"),
        Duration::from_secs(30),
        || {
            let out = host.podman(["exec", name, "valkey-cli", "ping"]);
            String::from_utf8_lossy(&out.stdout)
                .contains("PONG")
                .then_some(())
        },
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn container_inspect_health_exec_stats_logs() {
    let host = require_host!();
    let podman = connect(host).await;
    let name = unique_name("ctr");
    let network = unique_name("ctrnet");
    let mut cleanup = Cleanup::new(host);
    let before = SystemTime::now() - Duration::from_secs(2);
    run_valkey(host, &mut cleanup, &name, &network);

    assert!(podman.container_exists(&name).await.unwrap());
    let info = podman.inspect_container(&name).await.unwrap();
    let cli = cli_json(host, &["container", "inspect", &name]);
    let cli = &cli[0];
    assert_eq!(info.id, cli["Id"].as_str().unwrap());
    assert_eq!(info.name, name);
    assert!(info.state.running);
    assert_eq!(
        info.state.pid,
        Some(u32::try_from(cli["State"]["Pid"].as_u64().unwrap()).unwrap())
    );
    assert_eq!(info.restart_count, 0);
    let started = info.state.started_at.unwrap();
    assert!(
        started >= before && started <= SystemTime::now(),
        "{started:?}"
    );
    assert!(info.uptime(SystemTime::now()).is_some());
    let attachment = &info.networks[&network];
    let ip = attachment.ip.unwrap();
    assert_eq!(
        ip.to_string(),
        cli["NetworkSettings"]["Networks"][&network]["IPAddress"]
            .as_str()
            .unwrap()
    );
    let net = podman.inspect_network(&network).await.unwrap();
    assert!(net.subnets[0].subnet.contains(&ip));
    assert_eq!(attachment.gateway, net.subnets[0].gateway);
    // The network lists the container with the same address.
    assert_eq!(net.containers[&info.id].name, name);
    assert_eq!(net.containers[&info.id].addresses[0].addr(), ip);
    // Removing a network in use is refused and changes nothing.
    let in_use = podman.remove_network(&network).await;
    assert!(matches!(&in_use, Err(Error::InUse { .. })), "{in_use:?}");
    assert!(podman.network_exists(&network).await.unwrap());

    // The health check, run now (its interval is an hour).
    let health = podman.run_health_check(&name).await.unwrap();
    assert_eq!(health.status, HealthStatus::Healthy);
    assert_eq!(health.failing_streak, 0);
    let info = podman.inspect_container(&name).await.unwrap();
    let h = info.health.unwrap();
    assert_eq!(h.status, HealthStatus::Healthy);
    assert!(
        h.log
            .iter()
            .any(|l| l.exit_code == 0 && l.output.contains("PONG")),
        "{h:?}"
    );

    // Commands: output, exit codes, standard input, environment.
    let out = podman
        .exec(&name, &ExecSpec::new(["valkey-cli", "ping"]))
        .await
        .unwrap();
    assert_eq!((out.exit_code, out.stdout_text().trim()), (0, "PONG"));
    let out = podman
        .exec(
            &name,
            &ExecSpec::new(["sh", "-c", "echo out; echo err >&2; exit 3"]),
        )
        .await
        .unwrap();
    assert_eq!(out.exit_code, 3);
    assert_eq!(out.stdout, b"out\n");
    assert_eq!(out.stderr, b"err\n");
    let input: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    let out = podman
        .exec(
            &name,
            &ExecSpec::new(["sh", "-c", "cat; echo done >&2"]).stdin(input.clone()),
        )
        .await
        .unwrap();
    assert_eq!(out.exit_code, 0, "{}", out.stderr_text());
    assert_eq!(out.stdout.len(), input.len());
    assert!(out.stdout == input, "stdin came back changed");
    assert_eq!(out.stderr, b"done\n");
    let out = podman
        .exec(
            &name,
            &ExecSpec::new(["sh", "-c", "printf '%s' \"$GREETING\"; pwd"])
                .env("GREETING", "hello world")
                .workdir("/tmp"),
        )
        .await
        .unwrap();
    assert_eq!(out.stdout_text(), "hello world/tmp\n");
    let out = podman
        .exec(&name, &ExecSpec::new(["no-such-program"]))
        .await
        .unwrap();
    assert_ne!(out.exit_code, 0);
    // Valkey answers only with the password once one is set.
    let out = podman
        .exec(
            &name,
            &ExecSpec::new(["valkey-cli", "CONFIG", "SET", "requirepass", "pw1"]),
        )
        .await
        .unwrap();
    assert_eq!(out.stdout_text().trim(), "OK");
    let out = podman
        .exec(&name, &ExecSpec::new(["valkey-cli", "ping"]))
        .await
        .unwrap();
    assert!(out.stdout_text().contains("NOAUTH"), "{out:?}");
    let out = podman
        .exec(
            &name,
            &ExecSpec::new([
                "sh",
                "-c",
                // The password from standard input into the environment: never
                // in a command line, nor in podman's exec spec file.
                "REDISCLI_AUTH=\"$(cat)\" exec valkey-cli ping",
            ])
            .stdin("pw1"),
        )
        .await
        .unwrap();
    assert_eq!(out.stdout_text().trim(), "PONG");

    // Statistics.
    let stats = podman.container_stats(&name).await.unwrap();
    assert!(stats.memory_current > 0, "{stats:?}");
    assert!(stats.memory_limit >= stats.memory_current, "{stats:?}");
    assert!(stats.pids >= 1, "{stats:?}");
    assert!(stats.cpu_time > Duration::ZERO, "{stats:?}");
    // Rootful on this host: the cgroup is visible, so the peak is known.
    let peak = stats
        .memory_peak
        .expect("peak memory from the container's cgroup");
    assert!(peak >= stats.memory_current / 2 && peak > 0, "{stats:?}");

    // Logs: the tail, in order.
    let lines = podman.container_logs(&name, 1000).await.unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.text.contains("Ready to accept connections")),
        "{lines:?}"
    );
    let cli = host.podman_ok(["logs", &name]);
    let cli_stderr = String::from_utf8_lossy(&host.podman(["logs", &name]).stderr).into_owned();
    let all: Vec<&str> = cli.lines().chain(cli_stderr.lines()).collect();
    assert_eq!(lines.len(), all.len(), "{lines:?} vs {all:?}");
    let last = podman.container_logs(&name, 2).await.unwrap();
    assert_eq!(last.len(), 2);
    assert_eq!(last, lines[lines.len() - 2..]);
    assert!(
        lines
            .iter()
            .all(|l| l.stream == LogStream::Stdout || l.stream == LogStream::Stderr)
    );

    // A stopped container: statistics fail clearly; commands are refused.
    host.podman_ok(["stop", "--time", "1", &name]);
    let e = podman.container_stats(&name).await.unwrap_err();
    assert!(matches!(e, Error::StatsUnavailable { .. }), "{e:?}");
    let e = podman
        .exec(&name, &ExecSpec::new(["true"]))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Rejected { message, .. } if message.contains("running")),
        "{e:?}"
    );

    podman.remove_container(&name, true).await.unwrap();
    assert!(!podman.container_exists(&name).await.unwrap());
    assert!(
        podman
            .inspect_container(&name)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        podman
            .container_logs(&name, 5)
            .await
            .unwrap_err()
            .is_not_found()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_container_without_health_check_says_so() {
    let host = require_host!();
    let podman = connect(host).await;
    let name = unique_name("nohc");
    let mut cleanup = Cleanup::new(host);
    cleanup.container(&name);
    host.podman_ok(["run", "-d", "--name", &name, &host.valkey_image]);
    let info = podman.inspect_container(&name).await.unwrap();
    assert_eq!(info.health, None);
    let e = podman.run_health_check(&name).await.unwrap_err();
    assert!(
        matches!(&e, Error::NoHealthCheck { container } if *container == name),
        "{e:?}"
    );
    let e = podman
        .run_health_check("idbt-no-such-container")
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
}

async fn next(events: &mut homelab_podman::EventStream) -> homelab_podman::ContainerEvent {
    tokio::time::timeout(Duration::from_secs(30), events.next())
        .await
        .expect("an event within 30 s")
        .expect("the stream goes on")
        .expect("an event, not an error")
}

#[tokio::test(flavor = "multi_thread")]
async fn events_report_health_death_and_restart() {
    let host = require_host!();
    let podman = connect(host).await;
    let name = unique_name("ev");
    let network = unique_name("evnet");
    let mut cleanup = Cleanup::new(host);
    run_valkey(host, &mut cleanup, &name, &network);

    let filter = EventFilter::container(&name).types([
        EventType::HealthStatus,
        EventType::Died,
        EventType::Restart,
    ]);
    let mut events = podman.events(&filter).await.unwrap();
    // Events of other containers never pass the filter.
    let other = unique_name("evother");
    cleanup.container(&other);
    host.podman_ok(["run", "-d", "--name", &other, &host.valkey_image]);

    podman.run_health_check(&name).await.unwrap();
    let e = next(&mut events).await;
    assert_eq!(e.container_name, name);
    assert_eq!(e.kind, EventKind::HealthStatus(HealthStatus::Healthy));

    host.podman_ok(["restart", "--time", "1", &name]);
    loop {
        let e = next(&mut events).await;
        assert_eq!(e.container_name, name);
        if e.kind == EventKind::Restarted {
            break;
        }
    }

    // The restart's own stop may report a clean exit (0) late; the kill's death
    // carries SIGKILL's 137.
    host.podman_ok(["kill", &name]);
    loop {
        let e = next(&mut events).await;
        assert_eq!(e.container_name, name);
        if e.kind
            == (EventKind::Died {
                exit_code: Some(137),
            })
        {
            break;
        }
    }

    // Replaying from a time in the past gives the same events again.
    let replay = podman
        .events(&EventFilter::container(&name).since(SystemTime::now() - Duration::from_secs(120)))
        .await
        .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), replay.take(1).collect::<Vec<_>>())
        .await
        .unwrap();
    assert!(
        matches!(first[0].as_ref().unwrap().kind, EventKind::HealthStatus(_)),
        "{first:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn images_exist_and_inspect() {
    let host = require_host!();
    let podman = connect(host).await;
    for image in [
        &host.postgres_image,
        &host.postgres18_image,
        &host.valkey_image,
    ] {
        assert!(podman.image_exists(image).await.unwrap());
        let info = podman.inspect_image(image).await.unwrap();
        let cli = cli_json(host, &["image", "inspect", image]);
        assert_eq!(info.id, cli[0]["Id"].as_str().unwrap());
        // The configuration's environment and volumes, as podman's CLI shows
        // them (an image may set none).
        let env: std::collections::BTreeMap<String, String> = cli[0]["Config"]["Env"]
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter_map(|e| e.as_str().unwrap().split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(info.env, env);
        let mut volumes: Vec<String> = cli[0]["Config"]["Volumes"]
            .as_object()
            .map(|v| v.keys().cloned().collect())
            .unwrap_or_default();
        volumes.sort();
        assert_eq!(info.volumes, volumes);
        assert!(info.tags.contains(image), "{info:?}");
        assert!(info.size > 0);
        assert!(info.created.is_some());
        assert!(
            info.labels.contains_key("immich-db-test.recipe"),
            "{:?}",
            info.labels
        );
    }
    // The PostgreSQL 18 image declares its volume; the 17 one declares none.
    let pg18 = podman.inspect_image(&host.postgres18_image).await.unwrap();
    assert_eq!(pg18.volumes, ["/var/lib/postgresql"]);
    assert_eq!(
        pg18.env.get("PGDATA").map(String::as_str),
        Some("/var/lib/postgresql/18/docker")
    );
    let pg17 = podman.inspect_image(&host.postgres_image).await.unwrap();
    assert!(pg17.volumes.is_empty(), "{:?}", pg17.volumes);
    assert!(pg17.env.contains_key("PATH"), "{:?}", pg17.env);
    let missing = "localhost/idbt-no-such-image:latest";
    assert!(!podman.image_exists(missing).await.unwrap());
    let e = podman.inspect_image(missing).await.unwrap_err();
    assert!(
        matches!(
            e,
            Error::NotFound {
                kind: ObjectKind::Image,
                ..
            }
        ),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tag_names_an_image_and_moves_from_the_one_it_named() {
    let host = require_host!();
    let podman = connect(host).await;
    let name = format!("localhost/{}:v1", unique_name("tag"));
    let mut cleanup = Cleanup::new(host);
    cleanup.image(&name);
    let id = |image: &str| {
        host.podman_ok(["image", "inspect", "--format", "{{.Id}}", image])
            .trim()
            .to_owned()
    };
    let valkey = id(&host.valkey_image);
    let postgres = id(&host.postgres_image);
    podman.tag_image(&valkey, &name).await.unwrap();
    assert_eq!(id(&name), valkey);
    // By name, too; the tag leaves the image it named.
    podman.tag_image(&host.postgres_image, &name).await.unwrap();
    assert_eq!(id(&name), postgres);
    assert_eq!(
        id(&host.valkey_image),
        valkey,
        "the other image keeps its names"
    );
    // A digest is no name; a missing image is not found.
    let pinned = format!("{name}@sha256:{}", "0".repeat(64));
    let e = podman.tag_image(&valkey, &pinned).await.unwrap_err();
    assert!(matches!(e, Error::InvalidImageReference { .. }), "{e:?}");
    let e = podman
        .tag_image("localhost/idbt-no-such-image:1", &name)
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    assert_eq!(id(&name), postgres);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pull_that_cannot_reach_the_registry_names_the_image_and_stores_nothing() {
    let host = require_host!();
    let podman = connect(host).await;
    // A registry on this machine's loopback, where none listens: the pull
    // fails without any request leaving the machine.
    let image = format!("localhost/{}:1", unique_name("nopull"));
    let e = podman.pull_image(&image).await.unwrap_err();
    assert!(
        matches!(&e, Error::PullFailed { image: named, .. } if *named == image),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(text.contains(&image), "{text}");
    assert!(text.contains("localhost"), "{text}");
    assert!(!podman.image_exists(&image).await.unwrap());
    assert!(!host.podman(["image", "exists", &image]).status.success());

    // A reference that is not one is refused before podman is asked.
    let e = podman.pull_image("localhost/Bad Name:1").await.unwrap_err();
    assert!(
        matches!(&e, Error::InvalidImageReference { reference, .. } if reference == "localhost/Bad Name:1"),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn podman_api_models_do_not_decode_podman5_answers_but_ours_do() {
    let host = require_host!();
    let podman = connect(host).await;
    let name = unique_name("decode");
    let mut cleanup = Cleanup::new(host);
    cleanup.container(&name);
    host.podman_ok(["run", "-d", "--name", &name, &host.valkey_image]);
    let socket: PathBuf = podman.socket().to_owned();

    // podman-api's container model, at podman 5's own API version: the image's
    // entrypoint is a list and the stop signal a name there, and it fails.
    let api5 = podman_api::Podman::unix_versioned(
        &socket,
        podman_api::ApiVersion::new(5, Some(0), Some(0)),
    );
    let e = api5.containers().get(&name).inspect().await.unwrap_err();
    assert!(matches!(e, podman_api::Error::SerdeJsonError(_)), "{e:?}");
    // At its own API version (4.3.1) it decodes, through podman's compatibility
    // shapes.
    let api4 = podman_api::Podman::unix(&socket);
    api4.containers().get(&name).inspect().await.unwrap();
    // This crate's model reads podman 5's answer.
    let info = podman.inspect_container(&name).await.unwrap();
    assert!(info.state.running);

    // podman-api's network model drops podman 5's fields (DNS servers,
    // containers); this crate keeps them.
    let net = unique_name("decodenet");
    cleanup.network(&net);
    let (_, gateway) = create_cli_network(host, &net, true);
    let theirs = serde_json::to_value(api5.networks().get(&net).inspect().await.unwrap()).unwrap();
    assert!(theirs.get("network_dns_servers").is_none(), "{theirs}");
    let ours = podman.inspect_network(&net).await.unwrap();
    assert_eq!(ours.dns_servers, [gateway.parse::<IpAddr>().unwrap()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn labels_reach_secrets() {
    let host = require_host!();
    let podman = connect(host).await;
    let name = unique_name("lbl");
    let mut cleanup = Cleanup::new(host);
    cleanup.secret(&name);
    let options = homelab_podman::SecretOptions {
        replace: false,
        labels: BTreeMap::from([("app".to_owned(), "immich".to_owned())]),
    };
    let info = podman
        .create_secret(&name, &homelab_secrets::SecretValue::new("x"), &options)
        .await
        .unwrap();
    assert_eq!(info.labels["app"], "immich");
    assert_eq!(info.driver, "file");
    let cli = cli_json(host, &["secret", "inspect", &name]);
    assert_eq!(cli[0]["Spec"]["Labels"]["app"], "immich");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_container_runs_outside_any_unit_with_its_directory_and_no_network() {
    let host = require_host!();
    let podman = connect(host).await;
    let name = unique_name("run");
    let mut cleanup = Cleanup::new(host);
    cleanup.container(&name);
    let dir = host.btrfs_dir("run");
    let spec = homelab_podman::RunSpec::new(&name, &host.valkey_image)
        .bind(dir.path().display().to_string(), "/work")
        .command(["sh", "-c", "echo written > /work/marker && exec sleep 120"]);
    podman.run_container(&spec).await.unwrap();

    // Running, as podman's own inspect says, with no network but its loopback.
    let inspect = cli_json(host, &["inspect", &name]);
    assert_eq!(inspect[0]["State"]["Running"], true, "{inspect:#}");
    assert_eq!(
        inspect[0]["HostConfig"]["NetworkMode"], "none",
        "{inspect:#}"
    );
    let marker = dir.path().join("marker");
    immich_db_testhost::wait_for("the marker", Duration::from_secs(30), || {
        std::fs::read_to_string(&marker).ok()
    });
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "written\n");
    let info = podman.inspect_container(&name).await.unwrap();
    assert!(info.state.running);
    // Podman names the lack of one `none`.
    assert!(
        info.networks.keys().all(|n| n == "none"),
        "{:?}",
        info.networks
    );

    // The name is taken: nothing changes.
    let again = podman.run_container(&spec).await.unwrap_err();
    assert!(
        matches!(
            again,
            Error::AlreadyExists {
                kind: ObjectKind::Container,
                ..
            }
        ),
        "{again:?}"
    );
    assert_eq!(podman.inspect_container(&name).await.unwrap().id, info.id);

    podman.remove_container(&name, true).await.unwrap();
    assert!(!host.podman(["container", "exists", &name]).status.success());

    // An image that is not there: an error, and no container left behind.
    let missing = homelab_podman::RunSpec::new(&name, "localhost/idbt-no-such-image:latest");
    assert!(podman.run_container(&missing).await.is_err());
    assert!(!host.podman(["container", "exists", &name]).status.success());
}
