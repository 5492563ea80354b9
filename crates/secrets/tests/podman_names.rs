//! The name rules of this crate against the real `podman secret create` and
//! Quadlet generator of the test host.
//!
//! The values stored here are a fixed placeholder, not secrets: the tests
//! are about names.

use std::io::Write as _;
use std::process::{Output, Stdio};

use homelab_secrets::{Error, validate_name, validate_podman_name};
use immich_db_testhost::{Cleanup, Host, require_host, unique_name};

/// Removes a secret whose name may start with `-` (which `Cleanup` would
/// pass to podman as an option), also when the test panics.
struct RemoveSecret<'a> {
    host: &'a Host,
    name: String,
}

impl Drop for RemoveSecret<'_> {
    fn drop(&mut self) {
        let _ = self.host.podman(["secret", "rm", "--", &self.name]);
    }
}

fn podman_create(host: &Host, name: &str) -> Output {
    let mut child = host
        .command("podman")
        .args(["secret", "create", "--", name, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run podman");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(b"placeholder")
        .expect("cannot write to podman's standard input");
    child.wait_with_output().expect("cannot wait for podman")
}

/// Every name, accepted or rejected by this crate, gets the same answer from
/// podman. Names embed a unique `idbt-` part so nothing clashes and any
/// leftover is caught.
#[test]
fn podman_accepts_exactly_the_names_validate_podman_name_accepts() {
    let host = require_host!();
    let mut cleanup = Cleanup::new(host);
    let base = unique_name("name");
    // Padding so the whole name has a given length in bytes.
    let pad = |total: usize, fill: &str| {
        let mut name = base.clone();
        while name.len() + fill.len() <= total {
            name.push_str(fill);
        }
        name
    };
    let candidates = [
        base.clone(),
        format!("{base} with spaces"),
        format!("{base}/slash"),
        format!("{base}=equals"),
        format!("{base},comma"),
        format!(".{base}"),
        format!("-{base}"),
        format!("_{base}"),
        format!("{base}.dot"),
        format!("{base}_under"),
        format!("{base}-UPPER"),
        format!("{base}-é"),
        format!("{base}:colon"),
        format!("{base}+plus"),
        format!("{base}@at"),
        format!("{base}\ttab"),
        format!("{base}\nnewline"),
        format!("{base}\\backslash"),
        format!("{base}'\"quotes"),
        pad(253, "a"),
        pad(254, "a"),
        pad(300, "a"),
        // Multi-byte: the limit counts bytes, not characters.
        pad(252, "é") + "a",
        pad(254, "é"),
    ];
    for name in &candidates {
        let ours = validate_podman_name(name);
        let guard = RemoveSecret {
            host,
            name: name.clone(),
        };
        if !name.starts_with('-') {
            cleanup.secret(name);
        }
        let out = podman_create(host, name);
        let stderr = String::from_utf8_lossy(&out.stderr);
        match &ours {
            Ok(()) => assert!(
                out.status.success(),
                "podman rejected {name:?} ({} bytes) that validate_podman_name accepts: {stderr}",
                name.len()
            ),
            Err(error) => {
                assert!(
                    !out.status.success(),
                    "podman accepted {name:?} ({} bytes) that validate_podman_name rejects: {error}",
                    name.len()
                );
                assert!(
                    stderr.contains("invalid secret name"),
                    "podman failed on {name:?} for another reason: {stderr}"
                );
            }
        }
        if out.status.success() {
            let listed = host.podman_ok(["secret", "ls", "--noheading", "--format", "{{.Name}}"]);
            // A name with a newline lists on two lines; compare whole output.
            assert!(listed.contains(name.as_str()), "{name:?} not listed");
        }
        drop(guard);
    }
    // The portable rules are stricter than podman's, never looser.
    for name in &candidates {
        assert!(validate_name(name).is_err() || validate_podman_name(name).is_ok());
    }
}

/// Why `validate_name` refuses whitespace that podman accepts: Quadlet
/// splits a `Secret=` value on whitespace, so `Secret=my secret,...` asks
/// for two secrets.
#[test]
fn quadlet_splits_a_secret_name_with_a_space() {
    let host = require_host!();
    let units = tempfile::tempdir().unwrap();
    let name = unique_name("split");
    std::fs::write(
        units.path().join(format!("{name}.container")),
        format!(
            "[Container]\nImage={}\nSecret={name} password,type=env,target=PASSWORD\n",
            host.valkey_image
        ),
    )
    .unwrap();
    let out = host
        .command("/usr/libexec/podman/quadlet")
        .args(["-dryrun", "-user"])
        .env("QUADLET_UNIT_DIRS", units.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let generated = String::from_utf8_lossy(&out.stdout);
    let exec = generated
        .lines()
        .find(|line| line.starts_with("ExecStart="))
        .unwrap_or_else(|| panic!("no ExecStart in:\n{generated}"));
    assert!(
        exec.contains(&format!("--secret {name} --secret password,type=env")),
        "{exec}"
    );
    match validate_name(&format!("{name} password")) {
        Err(Error::InvalidName { .. }) => {}
        other => panic!("expected the name to be refused, got {other:?}"),
    }
}
