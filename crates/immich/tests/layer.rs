//! The library's operations on the real test host, called as another program
//! would: plan, deploy, verify, a second deploy that changes nothing, status,
//! and destroy, with the progress recorded.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::sync::Arc;

use homelab_immich::deploy::DeployOptions;
use homelab_immich::destroy::DestroyOptions;
use homelab_immich::progress::Recorder;
use homelab_immich::{Access, Layer, config};
use immich_db_testhost::{Cleanup, require_host, unique_name};

#[tokio::test]
async fn another_program_plans_deploys_verifies_and_destroys() {
    let host = require_host!();
    let name = unique_name("lib");
    let (subnet, gateway) = host.free_subnet();
    let pool = host.btrfs_dir("lib");
    let units = host.quadlet_dir();
    let (pg, vk) = (format!("{name}-pg"), format!("{name}-vk"));
    let secrets = [
        format!("{name}-pgpw"),
        format!("{name}-vkpw"),
        format!("{name}-jwt"),
    ];
    let mut cleanup = Cleanup::new(host);
    for secret in &secrets {
        cleanup.secret(secret);
    }
    cleanup
        .network(&format!("systemd-{name}"))
        .file(units.join(format!("{name}.network")))
        .file(units.join(format!("{pg}.container")))
        .file(units.join(format!("{vk}.container")))
        .unit(&format!("{name}-network.service"))
        .container(&pg)
        .container(&vk)
        .unit(&format!("{pg}.service"))
        .unit(&format!("{vk}.service"))
        .file(host.runtime_dir.join(format!("immich-db.{name}.lock")));
    let text = format!(
        "[network]\nname = {name:?}\nsubnet = {subnet:?}\ngateway = {gateway:?}\n\
         [storage]\npool = {:?}\n\
         [postgres]\nimage = {:?}\ncontainer_name = {pg:?}\npassword_secret = {:?}\n\
         [valkey]\nimage = {:?}\ncontainer_name = {vk:?}\npassword_secret = {:?}\n\
         [immich]\njwt_secret = {:?}\n\
         [systemd]\nunit_dir = {:?}\n",
        pool.path().display().to_string(),
        host.postgres_image,
        secrets[0],
        host.valkey_image,
        secrets[1],
        secrets[2],
        units.display().to_string(),
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), text).unwrap();

    // The few lines another program needs.
    let deployment = config::load(Some(file.path())).unwrap().validate().unwrap();
    let progress = Arc::new(Recorder::new());
    let layer = Layer::connect(deployment, &Access::new().runtime_dir(&host.runtime_dir))
        .await
        .unwrap()
        .with_progress(progress.clone());
    let plan = layer.plan(&DeployOptions::new()).await.unwrap();
    assert!(plan.changes);
    let deployed = layer.deploy(&DeployOptions::new()).await.unwrap();
    assert!(deployed.changed);
    assert!(deployed.verification().unwrap().ok, "{deployed:#?}");
    let verification = layer.verify().await;
    assert!(verification.ok, "{verification}");

    // What the caller was told while it ran: the phases, each change, and
    // both services becoming ready.
    let lines = progress.lines();
    assert!(
        lines.contains(&"phase: checking the host".to_owned()),
        "{lines:#?}"
    );
    for unit in [&pg, &vk] {
        assert!(
            lines.contains(&format!("ready {unit}.service")),
            "{lines:#?}"
        );
    }
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("done: ")).count(),
        deployed.done.len(),
        "{lines:#?}"
    );

    // The same through podman and psql, independently of the library.
    let login = host
        .command("podman")
        .args([
            "exec", &pg, "psql", "-U", "immich", "-d", "immich", "-Atc", "SELECT 1",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&login.stdout).trim(), "1");

    let again = layer.deploy(&DeployOptions::new()).await.unwrap();
    assert!(!again.changed);
    let status = layer.status().await;
    assert!(
        status
            .services
            .iter()
            .all(|s| s.health == "healthy" && s.memory_bytes.is_some()),
        "{status:#?}"
    );

    let destroyed = layer
        .destroy(&DestroyOptions::new().purge_data(true).purge_secrets(true))
        .await
        .unwrap();
    assert!(
        !destroyed.kept_data && !destroyed.kept_secrets,
        "{destroyed:#?}"
    );
    assert!(!host.podman(["container", "exists", &pg]).status.success());
    for secret in &secrets {
        assert!(!host.podman(["secret", "exists", secret]).status.success());
    }
}
