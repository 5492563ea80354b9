//! `update`, with local images (no registry is reachable here): a newer image
//! under Valkey's configured name is seen by `verify`, and `update` moves to it
//! once it is healthy; one whose health check fails is rolled back to the image
//! that ran before, which the name names again. PostgreSQL, pinned by tag and
//! digest as Immich's own compose pins it, deploys, verifies and is left alone.

#![allow(clippy::unwrap_used)] // test helpers fail the test by panicking

mod common;

use std::path::Path;

use common::{TestDeployment, named_check, text};
use immich_db_testhost::{Cleanup, Host, require_host, require_rootless_host, unique_name};

#[test]
fn update_moves_to_a_healthy_image_and_rolls_back_from_a_failing_one() {
    update(require_host!());
}

#[test]
fn rootless_update_moves_to_a_healthy_image_and_rolls_back_from_a_failing_one() {
    update(require_rootless_host!());
}

/// The ID of an image (or of the image a container runs).
fn image_id(host: &Host, what: &str, container: bool) -> String {
    let format = if container { "{{.Image}}" } else { "{{.Id}}" };
    let kind = if container { "container" } else { "image" };
    host.podman_ok([kind, "inspect", "--format", format, what])
        .trim()
        .to_owned()
}

/// Builds an image from `containerfile` (and the files beside it) as the
/// host's user, and returns its ID.
fn build(host: &Host, dir: &Path, tag: &str, containerfile: &str) -> String {
    std::fs::write(dir.join("Containerfile"), containerfile).unwrap();
    host.give(dir);
    let out = host
        .command("podman")
        .args(["build", "--quiet", "--tag", tag, "--file"])
        .arg(dir.join("Containerfile"))
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "podman build {tag}: {}", text(&out));
    image_id(host, tag, false)
}

fn update(host: &'static Host) {
    // Valkey's configured name, the test's own, first naming the test image.
    // Its images go after the deployment's container (dropped first).
    let repo = format!("localhost/{}", unique_name("upd-valkey"));
    let name = format!("{repo}:current");
    let (good_tag, bad_tag) = (format!("{repo}:good"), format!("{repo}:bad"));
    let mut images = Cleanup::new(host);
    images.image(&name).image(&good_tag).image(&bad_tag);
    let d = TestDeployment::new(host, "upd");
    host.podman_ok(["tag", &host.valkey_image, &name]);
    let base = image_id(host, &name, false);
    // PostgreSQL pinned by tag and digest.
    let digest = host
        .podman_ok([
            "image",
            "inspect",
            "--format",
            "{{.Digest}}",
            &host.postgres_image,
        ])
        .trim()
        .to_owned();
    let pinned = format!("{}@{digest}", host.postgres_image);
    let config = d.write_config(
        "update.toml",
        &d.config_text(
            &[
                ("valkey", "image", Some(&format!("{name:?}"))),
                ("postgres", "image", Some(&format!("{pinned:?}"))),
            ],
            &[],
        ),
    );
    let json = |args: &[&str]| {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = d.command(&config, &all).output().unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", text(&out)));
        (out.status.code(), report)
    };
    let (code, report) = json(&["deploy"]);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(image_id(host, &d.vk, true), base);
    let (code, report) = json(&["verify"]);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(named_check(&report, &format!("image {}", d.vk))["ok"], true);
    assert_eq!(named_check(&report, &format!("image {}", d.pg))["ok"], true);

    // A newer, healthy image under the name: verify warns, and says what to do.
    let dir = tempfile::tempdir().unwrap();
    let good = build(
        host,
        dir.path(),
        &good_tag,
        &format!("FROM {name}\nLABEL idbt.update=good\n"),
    );
    host.podman_ok(["tag", &good, &name]);
    let (code, report) = json(&["verify"]);
    assert_eq!(code, Some(0), "a stale image is a warning: {report:#}");
    let stale = named_check(&report, &format!("image {}", d.vk));
    assert_eq!(stale["ok"], false, "{stale}");
    assert_eq!(stale["severity"], "warning", "{stale}");
    let detail = stale["detail"].as_str().unwrap();
    assert!(
        detail.contains("older than the newest local copy"),
        "{detail}"
    );
    assert!(
        detail.contains("immich-db update --service valkey"),
        "{detail}"
    );

    // update moves to it.
    let (code, report) = json(&["update", "--no-pull", "--timeout", "60"]);
    assert_eq!(code, Some(0), "{report:#}");
    let services = report["services"].as_array().unwrap();
    assert_eq!(services[0]["service"], "valkey", "{report:#}");
    assert_eq!(services[0]["outcome"], "updated", "{report:#}");
    assert_eq!(services[0]["previous"], base.as_str(), "{report:#}");
    assert_eq!(services[0]["candidate"], good.as_str(), "{report:#}");
    assert_eq!(services[1]["outcome"], "pinned", "{report:#}");
    assert_eq!(report["changed"], true);
    assert_eq!(image_id(host, &d.vk, true), good);
    let (code, report) = json(&["verify"]);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(named_check(&report, &format!("image {}", d.vk))["ok"], true);
    // Nothing newer: nothing restarted.
    let before = d.container_identity(&d.vk);
    let (code, report) = json(&["update", "--service", "valkey", "--no-pull"]);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["services"][0]["outcome"], "up-to-date", "{report:#}");
    assert_eq!(report["changed"], false);
    assert_eq!(d.container_identity(&d.vk), before);

    // An image whose health check fails (its valkey-cli answers nothing):
    // update refuses it after the gate and rolls back.
    std::fs::write(dir.path().join("valkey-cli"), "#!/bin/sh\nexit 1\n").unwrap();
    std::fs::set_permissions(
        dir.path().join("valkey-cli"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let bad = build(
        host,
        dir.path(),
        &bad_tag,
        &format!("FROM {good}\nCOPY valkey-cli /usr/bin/valkey-cli\n"),
    );
    host.podman_ok(["tag", &bad, &name]);
    let started = std::time::Instant::now();
    let (code, report) = json(&[
        "update",
        "--service",
        "valkey",
        "--no-pull",
        "--timeout",
        "15",
    ]);
    assert_eq!(code, Some(1), "a rollback is a failed check: {report:#}");
    assert_eq!(report["ok"], false, "{report:#}");
    let valkey = &report["services"][0];
    assert_eq!(valkey["outcome"], "rolled-back", "{report:#}");
    assert_eq!(valkey["candidate"], bad.as_str(), "{report:#}");
    assert!(
        valkey["reason"]
            .as_str()
            .unwrap()
            .contains("not healthy within 15 s"),
        "{report:#}"
    );
    assert!(started.elapsed().as_secs() < 120, "{:?}", started.elapsed());
    // Back on the good image, which the name names again; healthy and active.
    assert_eq!(image_id(host, &d.vk, true), good);
    assert_eq!(image_id(host, &name, false), good);
    assert_eq!(d.is_active(&format!("{}.service", d.vk)), "active");
    let (code, report) = json(&["verify"]);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(named_check(&report, &format!("image {}", d.vk))["ok"], true);
}
