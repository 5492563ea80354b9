//! Real host: the rendered Valkey manifests and their Secret run under
//! `podman kube play`, which implements that part of the Kubernetes API, with
//! valkey-cli inside the container as the oracle. (The CloudNativePG `Cluster`
//! needs its operator and cannot run here; `manifests.rs` checks it against
//! CloudNativePG's schema.)

// Test code: a failed unwrap is a failed test, helpers included.
#![allow(clippy::unwrap_used)]

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use homelab_kube::{DatabaseLayer, SECRETS_FILE, SecretValues, Secrets, VALKEY_FILE, WriteOptions};
use homelab_secrets::SecretValue;
use immich_db_testhost::{Cleanup, Host, require_host, unique_name, wait_for};

/// Takes down what `podman kube play` made from `file`, also when the test
/// fails: the pod, its volumes, and the volume podman makes for a Secret
/// mounted as one, which `--down --force` leaves behind.
struct KubeDown<'h> {
    host: &'h Host,
    file: PathBuf,
    pod: String,
    volumes: Vec<String>,
}

impl Drop for KubeDown<'_> {
    fn drop(&mut self) {
        let file = self.file.to_string_lossy().into_owned();
        let _ = self
            .host
            .podman(["kube", "play", "--down", "--force", file.as_str()]);
        let _ = self.host.podman(["pod", "rm", "--force", &self.pod]);
        for volume in &self.volumes {
            let _ = self.host.podman(["volume", "rm", "--force", volume]);
        }
    }
}

/// Runs `script` with `sh -c` in `container`, with `stdin` as its standard
/// input (so that a password is in no command line), and returns its standard
/// output.
fn exec_with_stdin(host: &Host, container: &str, script: &str, stdin: &[u8]) -> String {
    let mut child = host
        .command("podman")
        .args(["exec", "-i", container, "sh", "-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("podman exec starts");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(stdin)
        .expect("podman exec reads its input");
    let out = child.wait_with_output().expect("podman exec ends");
    assert!(
        out.status.success(),
        "podman exec failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// valkey-cli over the container's loopback, with the password (if any) read
/// from standard input into its environment.
const CLI_WITH_STDIN_PASSWORD: &str = "{ IFS= read -r REDISCLI_AUTH || [ -n \"$REDISCLI_AUTH\" ]; }; \
     export REDISCLI_AUTH; valkey-cli --no-auth-warning -h 127.0.0.1 \"$@\"";

fn cli(host: &Host, container: &str, password: &[u8], args: &str) -> String {
    exec_with_stdin(
        host,
        container,
        &format!("set -- {args}; {CLI_WITH_STDIN_PASSWORD}"),
        password,
    )
}

/// Writes the Secrets and Valkey's objects into one file, as `podman kube
/// play` takes one; mode 0600, since it holds the password.
fn play_file(dir: &Path) -> PathBuf {
    let path = dir.join("play.yaml");
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .expect("the play file is created");
    for name in [SECRETS_FILE, VALKEY_FILE] {
        let text = std::fs::read(dir.join(name)).expect("the rendered file is there");
        out.write_all(&text).expect("the play file is written");
    }
    path
}

#[test]
fn valkey_manifests_run_under_podman_kube_play() {
    let host = require_host!();
    let base = unique_name("kube");
    let password = unique_name("pw").replace('-', "");

    let mut layer = DatabaseLayer::default();
    layer.namespace = "idbt".into();
    layer.valkey.name.clone_from(&base);
    layer.valkey.image.clone_from(&host.valkey_image);
    layer.secrets.postgres_password = format!("{base}-pg");
    layer.secrets.redis_password = format!("{base}-redis");
    layer.secrets.immich_jwt_secret = format!("{base}-jwt");
    let values = SecretValues::new(
        SecretValue::new("pg-unused"),
        SecretValue::new("jwt-unused"),
    )
    .with_redis_password(SecretValue::new(password.as_str()));

    let mut cleanup = Cleanup::new(host);
    for secret in [
        &layer.secrets.postgres_password,
        &layer.secrets.redis_password,
        &layer.secrets.immich_jwt_secret,
    ] {
        cleanup.secret(secret);
    }
    let container = format!("{base}-pod-valkey");
    cleanup.container(&container);

    let dir = host.tmpfs_dir("kube");
    layer
        .render(Secrets::Included(&values))
        .unwrap()
        .write_to(dir.path(), &WriteOptions::new())
        .unwrap();
    let file = play_file(dir.path());
    let down = KubeDown {
        host,
        file: file.clone(),
        pod: format!("{base}-pod"),
        volumes: vec![format!("{base}-data"), layer.secrets.redis_password.clone()],
    };

    // No network: the test talks to Valkey only inside its container.
    let file_arg = file.to_string_lossy().into_owned();
    host.podman_ok(["kube", "play", "--network", "none", file_arg.as_str()]);

    // Podman runs the startup probe as its startup health check: healthy means
    // the manifest's own check got PONG with the mounted password.
    wait_for("Valkey to be healthy", Duration::from_secs(60), || {
        let out = host.podman([
            "inspect",
            "--format",
            "{{.State.Health.Status}}",
            &container,
        ]);
        let status = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert_ne!(status, "unhealthy", "{}", logs(host, &container));
        (status == "healthy").then_some(())
    });

    // Without the password Valkey refuses; with a wrong one too; with it, it
    // answers and can save its data in the claimed volume.
    let refused = cli(host, &container, b"", "ping");
    assert!(refused.contains("NOAUTH"), "without a password: {refused}");
    let wrong = cli(host, &container, b"not-the-password", "ping");
    assert!(!wrong.contains("PONG"), "a wrong password was accepted");
    let answered = cli(host, &container, password.as_bytes(), "ping");
    assert_eq!(answered.trim(), "PONG");
    let saved = cli(host, &container, password.as_bytes(), "save");
    assert_eq!(saved.trim(), "OK", "Valkey cannot write its volume");
    let listing = exec_with_stdin(host, &container, "ls /data", b"");
    assert!(listing.contains("dump.rdb"), "{listing}");

    // The password is in neither the server's command line nor its environment.
    let process = exec_with_stdin(
        host,
        &container,
        "tr '\\0' ' ' </proc/1/cmdline; echo; tr '\\0' '\\n' </proc/1/environ",
        b"",
    );
    assert!(process.contains("valkey-server"), "PID 1 is not the server");
    assert!(
        !process.contains(&password),
        "the password is in the server's command line or environment"
    );
    // Positive control for that search: the mounted Secret does hold it.
    let mounted = exec_with_stdin(host, &container, "cat /run/secrets/valkey/password", b"");
    assert_eq!(mounted, password);

    // `--down` removes the pod and the claimed volume.
    host.podman_ok(["kube", "play", "--down", "--force", file_arg.as_str()]);
    assert!(
        !host
            .podman(["pod", "exists", &format!("{base}-pod")])
            .status
            .success()
    );
    assert!(
        !host
            .podman(["volume", "exists", &format!("{base}-data")])
            .status
            .success()
    );
    drop(down);
    drop(cleanup);
}

fn logs(host: &Host, container: &str) -> String {
    let out = host.podman(["logs", "--tail", "20", container]);
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
