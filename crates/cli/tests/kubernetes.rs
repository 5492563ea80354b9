//! `render --kubernetes`: the manifests from the deployment's configuration,
//! without any secret value, or with the values of the real Podman secret
//! store in one file of mode 0600; the `Cluster` against CloudNativePG's own
//! schema; no host needed without the values; bad `[kubernetes]` keys
//! refused at their line.

#![allow(clippy::unwrap_used)] // test helpers fail the test by panicking

mod common;

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use base64::Engine as _;
use common::{binary, text};
use immich_db_testhost::cnpg::{cluster_schema, schema_errors, yaml_documents};
use immich_db_testhost::{Cleanup, Host, require_host, require_rootless_host, unique_name};

/// Values no manifest holds by chance, one per secret.
const CANARIES: [&str; 3] = ["k8sPgCanary41x", "k8sRedisCanary72q", "k8sJwtCanary93z"];

/// Each canary as written (in a README, say) and as a Secret's `data` holds it.
fn canary_forms() -> Vec<String> {
    CANARIES
        .iter()
        .flat_map(|c| {
            [
                (*c).to_owned(),
                base64::engine::general_purpose::STANDARD.encode(c),
            ]
        })
        .collect()
}

/// Every file in `dir`, by name, with its text and permission bits.
fn files(dir: &Path) -> Vec<(String, String, u32)> {
    let mut found: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let mode = e.metadata().unwrap().permissions().mode() & 0o7777;
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read_to_string(e.path()).unwrap(),
                mode,
            )
        })
        .collect();
    found.sort();
    found
}

const KUBERNETES: &str = "[kubernetes]\nnamespace = \"photos\"\npostgres_storage = \"20Gi\"\nvalkey_storage = \"2Gi\"\npostgres_instances = 2\nstorage_class = \"local-path\"\n";

/// A configuration with names of its own, and its secrets in the host's
/// Podman store (removed at the end). Nothing is deployed: no systemd
/// manager is asked.
struct Setup {
    host: &'static Host,
    pg: String,
    pg_secret: String,
    config: PathBuf,
    _dir: tempfile::TempDir,
    _cleanup: Cleanup,
}

impl Setup {
    fn new(host: &'static Host) -> Self {
        let name = unique_name("k8s");
        let (pg, vk) = (format!("{name}-pg"), format!("{name}-vk"));
        let secrets = [
            format!("{name}-pgpw"),
            format!("{name}-vkpw"),
            format!("{name}-jwt"),
        ];
        let mut cleanup = Cleanup::new(host);
        for (secret, value) in secrets.iter().zip(CANARIES) {
            cleanup.secret(secret);
            let mut child = host
                .command("podman")
                .args(["secret", "create", secret, "-"])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(value.as_bytes())
                .unwrap();
            assert!(child.wait().unwrap().success());
        }
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                "[postgres]\ncontainer_name = {pg:?}\npassword_secret = {:?}\n\
                 [valkey]\ncontainer_name = {vk:?}\nimage = {:?}\npassword_secret = {:?}\n\
                 [immich]\njwt_secret = {:?}\n{KUBERNETES}",
                secrets[0], host.valkey_image, secrets[1], secrets[2]
            ),
        )
        .unwrap();
        host.give(dir.path());
        Self {
            host,
            pg,
            pg_secret: secrets[0].clone(),
            config,
            _dir: dir,
            _cleanup: cleanup,
        }
    }

    /// The binary, as the host's user, with this configuration.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.host.command(self.host.executable(Path::new(binary())));
        cmd.arg("--config").arg(&self.config).args(args);
        cmd
    }

    fn render(&self, out: &Path, extra: &[&str]) -> (Output, serde_json::Value) {
        let mut args = vec![
            "--json",
            "render",
            "--kubernetes",
            "--output",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let run = self.command(&args).output().unwrap();
        assert!(run.status.success(), "render {extra:?}: {}", text(&run));
        let json = serde_json::from_slice(&run.stdout).unwrap();
        (run, json)
    }
}

#[test]
fn manifests_without_and_with_the_secrets_values() {
    manifests(require_host!());
}

#[test]
fn manifests_without_and_with_the_secrets_values_rootless() {
    manifests(require_rootless_host!());
}

fn manifests(host: &'static Host) {
    let d = Setup::new(host);
    let scratch = tempfile::tempdir().unwrap();
    host.give(scratch.path());

    // Without --include-secrets: references only, no value anywhere.
    let out = scratch.path().join("plain");
    let (run, report) = d.render(&out, &[]);
    assert_eq!(report["ok"], true, "{report:#}");
    assert_eq!(report["secrets_included"], false, "{report:#}");
    assert_eq!(report["namespace"], "photos");
    assert_eq!(report["cluster"], d.pg.as_str());
    let written = files(&out);
    let names: Vec<&str> = written.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["02-postgres-cluster.yaml", "03-valkey.yaml", "README.md"]
    );
    for (name, content, mode) in &written {
        assert_eq!(*mode, 0o644, "{name}");
        for canary in canary_forms() {
            assert!(!content.contains(&canary), "{name} holds a secret's value");
        }
    }
    for canary in canary_forms() {
        assert!(!text(&run).contains(&canary));
    }
    // The README says how to create the Secrets by hand, by their names.
    let readme = &written[2].1;
    assert!(
        readme.contains(&format!("create secret generic {}", d.pg_secret)),
        "{readme}"
    );
    assert!(readme.contains("immich-db restore --target"), "{readme}");

    // The Cluster, as CloudNativePG's schema accepts it, with the
    // configuration's values.
    let cluster = yaml_documents(&written[0].1).remove(0);
    if let Some(schema) = cluster_schema("manifests_without_and_with_the_secrets_values") {
        let errors = schema_errors(&schema, &cluster);
        assert!(errors.is_empty(), "{}", errors.join("\n"));
        // Positive control: the check finds a misspelt field.
        let mut wrong = cluster.clone();
        wrong["spec"]["storage"]["sise"] = "1Gi".into();
        assert_eq!(schema_errors(&schema, &wrong), [".spec.storage.sise"]);
    }
    assert_eq!(cluster["metadata"]["namespace"], "photos");
    assert_eq!(cluster["metadata"]["name"], d.pg.as_str());
    assert_eq!(cluster["spec"]["instances"], 2);
    assert_eq!(cluster["spec"]["storage"]["size"], "20Gi");
    assert_eq!(cluster["spec"]["storage"]["storageClass"], "local-path");
    assert_eq!(cluster["spec"]["imageName"], homelab_default_image());
    assert_eq!(
        cluster["spec"]["bootstrap"]["initdb"]["secret"]["name"],
        d.pg_secret.as_str()
    );
    let valkey = yaml_documents(&written[1].1);
    assert_eq!(valkey[0]["spec"]["resources"]["requests"]["storage"], "2Gi");
    assert_eq!(
        valkey[1]["spec"]["template"]["spec"]["containers"][0]["image"],
        host.valkey_image.as_str()
    );

    // With --include-secrets: the values of the Podman secret store, in the
    // one file of mode 0600, and the command says so.
    let out = scratch.path().join("with-values");
    let (_, report) = d.render(&out, &["--include-secrets"]);
    assert_eq!(report["secrets_included"], true, "{report:#}");
    let listed: Vec<_> = report["files"].as_array().unwrap().iter().collect();
    let secret_files: Vec<_> = listed
        .iter()
        .filter(|f| f["holds_secrets"] == true)
        .collect();
    assert_eq!(secret_files.len(), 1, "{report:#}");
    assert_eq!(secret_files[0]["mode"], "0600");
    assert!(
        report["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("0600")),
        "{report:#}"
    );
    for (name, content, mode) in files(&out) {
        let holds = name == "01-secrets.yaml";
        assert_eq!(mode, if holds { 0o600 } else { 0o644 }, "{name}");
        for canary in CANARIES {
            let encoded = base64::engine::general_purpose::STANDARD.encode(canary);
            assert_eq!(content.contains(&encoded), holds, "{name} and {canary}");
            assert!(!content.contains(canary), "{name} holds {canary} unencoded");
        }
    }
    // The Secrets decode to the values, under the names of the Podman secrets.
    let secrets = yaml_documents(&std::fs::read_to_string(out.join("01-secrets.yaml")).unwrap());
    let decode = |doc: &serde_json::Value, key: &str| {
        let data = doc["data"][key].as_str().unwrap();
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(data)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(secrets[0]["metadata"]["name"], d.pg_secret.as_str());
    assert_eq!(decode(&secrets[0], "password"), CANARIES[0]);
    assert_eq!(decode(&secrets[1], "password"), CANARIES[1]);
    assert_eq!(decode(&secrets[2], "secret"), CANARIES[2]);

    // In text, it says so too.
    let run = d
        .command(&[
            "render",
            "--kubernetes",
            "--include-secrets",
            "--output",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", text(&run));
    let said = String::from_utf8_lossy(&run.stdout);
    assert!(
        said.contains("01-secrets.yaml (mode 0600, holds the secrets' values)"),
        "{said}"
    );
    assert!(said.contains("values are included"), "{said}");
    for canary in canary_forms() {
        assert!(!text(&run).contains(&canary));
    }

    // Rendered again without the values into the same directory: the file
    // with them is left, and said to be.
    let (_, report) = d.render(&out, &[]);
    assert_eq!(
        report["left_in_place"][0].as_str().unwrap(),
        out.join("01-secrets.yaml").to_str().unwrap(),
        "{report:#}"
    );
}

fn homelab_default_image() -> &'static str {
    "ghcr.io/tensorchord/cloudnative-vectorchord:16.9-0.4.3"
}

/// The binary with a configuration file in a fresh directory and a podman
/// socket that does not exist.
fn without_podman(config: &str, args: &[&str]) -> (tempfile::TempDir, Output) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(&file, config).unwrap();
    let out = Command::new(binary())
        .arg("--config")
        .arg(&file)
        .args(args)
        .env("CONTAINER_HOST", "unix:///nonexistent/podman.sock")
        .env("XDG_RUNTIME_DIR", dir.path())
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    (dir, out)
}

#[test]
fn without_the_values_no_host_is_needed() {
    // No podman on the PATH, no podman socket, no systemd manager.
    let target = tempfile::tempdir().unwrap();
    let k8s = target.path().join("k8s");
    let (_dir, out) = without_podman(
        "",
        &["render", "--kubernetes", "--output", k8s.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(files(&k8s).len(), 3);

    // Positive control: the values need podman, which is not there. Exit 3,
    // and nothing written.
    let k8s = target.path().join("k8s-values");
    let (_dir, out) = without_podman(
        "",
        &[
            "render",
            "--kubernetes",
            "--include-secrets",
            "--output",
            k8s.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("cannot reach the Podman service"),
        "{}",
        text(&out)
    );
    assert!(!k8s.exists());
}

#[test]
fn bad_kubernetes_keys_are_refused_at_their_line() {
    let target = tempfile::tempdir().unwrap();
    let k8s = target.path().join("k8s");
    for (config, key, line) in [
        (
            "[kubernetes]\nnamespace = \"Photos\"\n",
            "[kubernetes] namespace",
            2,
        ),
        (
            "\n[kubernetes]\npostgres_storage = \"ten gigs\"\n",
            "[kubernetes] postgres_storage",
            3,
        ),
        (
            "[kubernetes]\npostgres_instances = 0\n",
            "[kubernetes] postgres_instances",
            2,
        ),
    ] {
        let (dir, out) = without_podman(
            config,
            &["render", "--kubernetes", "--output", k8s.to_str().unwrap()],
        );
        assert_eq!(out.status.code(), Some(2), "{config}: {}", text(&out));
        let said = text(&out);
        assert!(
            said.contains(&format!(
                "{}:{line}:1 ({key})",
                dir.path().join("config.toml").display()
            )),
            "{config}: {said}"
        );
        assert!(said.contains("help:"), "{said}");
        assert!(!k8s.exists());
    }
    // A name Kubernetes does not take, from the Podman part of the
    // configuration: named by its key, nothing written.
    let (_dir, out) = without_podman(
        "[postgres]\ncontainer_name = \"Postgres_Immich\"\n",
        &["render", "--kubernetes", "--output", k8s.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("[postgres] container_name"),
        "{}",
        text(&out)
    );
    assert!(!k8s.exists());
    // The flags that belong to Quadlet units do not go with it.
    let (_dir, out) = without_podman(
        "",
        &[
            "render",
            "--kubernetes",
            "--podman",
            "5.0.0",
            "--output",
            "x",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let (_dir, out) = without_podman("", &["render", "--include-secrets", "--output", "x"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}
