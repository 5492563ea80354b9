//! The library surface the CLI builds on: formatting files in place, rendering for
//! an older podman, loading sets, and lossless edits.

// Helpers fail the test the way the tests themselves do: by panicking.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use homelab_quadlet::{
    AnyUnit, Container, ContainerUnit, Error, Notify, PodmanVersion, SourceUnit, UnitFile,
    UnitKind, UnitSet, format_file, format_in_place,
};

#[test]
fn format_in_place_rewrites_only_what_changes_and_keeps_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let messy = dir.path().join("messy.container");
    std::fs::write(
        &messy,
        "[Container]\n Image = docker.io/library/alpine:3.20\n\n\n",
    )
    .unwrap();
    std::fs::set_permissions(&messy, std::fs::Permissions::from_mode(0o640)).unwrap();
    assert!(format_file(&messy).unwrap().changed);
    assert!(format_in_place(&messy).unwrap());
    assert_eq!(
        std::fs::read_to_string(&messy).unwrap(),
        "[Container]\nImage=docker.io/library/alpine:3.20\n"
    );
    assert_eq!(
        std::fs::metadata(&messy).unwrap().permissions().mode() & 0o777,
        0o640
    );
    // Already canonical: not rewritten.
    let before = std::fs::metadata(&messy).unwrap().modified().unwrap();
    assert!(!format_in_place(&messy).unwrap());
    assert_eq!(
        std::fs::metadata(&messy).unwrap().modified().unwrap(),
        before
    );

    // A syntax error leaves the file untouched and names the place.
    let broken = dir.path().join("broken.network");
    let text = "[Network]\nSubnet=10.0.0.0/24\n  what is this\n";
    std::fs::write(&broken, text).unwrap();
    let err = format_in_place(&broken).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("{}:3:3: ", broken.display())),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&broken).unwrap(), text);
    // Nothing else was left in the directory.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);

    let missing = format_file(Path::new("/nonexistent/x.container")).unwrap_err();
    assert!(matches!(missing, Error::Read { .. }), "{missing}");
}

#[test]
fn rendering_for_an_older_podman() {
    let mut unit = ContainerUnit {
        container: Container::new("docker.io/library/postgres:17"),
        ..ContainerUnit::default()
    };
    unit.container.shm_size = Some("128m".into());
    unit.container.stop_timeout = Some(30);
    unit.container.network_alias = vec!["db".into(), "pg".into()];
    let text = unit.render_for(PodmanVersion::new(4, 9, 3)).unwrap();
    assert_eq!(
        text,
        "[Container]\nImage=docker.io/library/postgres:17\nPodmanArgs=--network-alias db\n\
         PodmanArgs=--network-alias pg\nShmSize=128m\nPodmanArgs=--stop-timeout 30\n"
    );
    // For a new enough podman nothing changes.
    assert_eq!(
        unit.render_for(PodmanVersion::V5_4).unwrap(),
        unit.render().unwrap()
    );
    // What has no podman option cannot be rendered for an older podman.
    unit.container.notify = Some(Notify::Healthy);
    let err = unit.render_for(PodmanVersion::new(4, 9, 3)).unwrap_err();
    assert!(
        matches!(&err, Error::TooNew { key, since, .. } if key == "Notify" && *since == PodmanVersion::V5_0),
        "{err}"
    );
    unit.container.notify = None;
    unit.container.service_name = Some("db".into());
    let err = unit.render_for(PodmanVersion::V5_2).unwrap_err();
    assert!(
        err.to_string()
            .contains("`ServiceName=` in [Container] needs podman 5.3.0"),
        "{err}"
    );
    // .pod files need 5.0.
    let pod = homelab_quadlet::PodUnit::default();
    assert!(pod.render_for(PodmanVersion::new(4, 9, 0)).is_err());
}

#[test]
fn a_key_becomes_podman_args_only_where_podman_args_is_known() {
    // [Network] DNS= arrived in 4.7, and PodmanArgs= in [Network] in 4.6: for 4.6
    // the key becomes the option; for 4.5 neither is known, so it is an error.
    let mut unit = homelab_quadlet::NetworkUnit::default();
    unit.network.dns = vec!["10.89.5.1".parse().unwrap()];
    assert_eq!(
        unit.render_for(PodmanVersion::V4_6).unwrap(),
        "[Network]\nPodmanArgs=--dns 10.89.5.1\n"
    );
    let err = unit.render_for(PodmanVersion::V4_5).unwrap_err();
    assert!(
        matches!(&err, Error::TooNew { key, since, .. } if key == "DNS" && *since == PodmanVersion::new(4, 7, 0)),
        "{err}"
    );

    // The lint suggests the same: the option where it is accepted, else a newer podman.
    let text = "[Network]\nDNS=10.89.5.1\n\n[Install]\nWantedBy=default.target\n";
    let fix_for = |target| {
        let mut set = UnitSet::new();
        set.insert("photos.network", text).unwrap();
        homelab_quadlet::lint(&set, target)
            .into_iter()
            .find(|f| f.code == homelab_quadlet::Code::TooNew)
            .and_then(|f| f.fix)
            .unwrap()
    };
    assert!(fix_for(PodmanVersion::V4_6).contains("PodmanArgs=--dns 10.89.5.1"));
    let fix = fix_for(PodmanVersion::V4_5);
    assert!(!fix.contains("PodmanArgs"), "{fix}");
    assert!(fix.contains("4.7.0"), "{fix}");
}

#[test]
fn sets_load_directories_and_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.network"), "[Network]\n").unwrap();
    std::fs::write(dir.path().join("b.container"), "[Container]\nImage=x\n").unwrap();
    std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
    std::fs::create_dir(dir.path().join("c.container")).unwrap();
    let other = tempfile::tempdir().unwrap();
    // Same name in a later directory: the first one wins, as with the generator.
    std::fs::write(
        other.path().join("a.network"),
        "[Network]\nNetworkName=later\n",
    )
    .unwrap();
    let extra = other.path().join("d.volume");
    std::fs::write(&extra, "[Volume]\n").unwrap();
    let set = UnitSet::load([dir.path(), other.path()]).unwrap();
    let names: Vec<&str> = set.units().iter().map(SourceUnit::file_name).collect();
    assert_eq!(names, ["a.network", "b.container", "d.volume"]);
    assert_eq!(
        set.get("a.network").unwrap().names.resource.as_deref(),
        Some("systemd-a")
    );
    assert_eq!(
        set.by_service("d-volume.service").unwrap().kind,
        UnitKind::Volume
    );
    let set = UnitSet::load([&extra]).unwrap();
    assert_eq!(set.units().len(), 1);
    assert!(matches!(
        UnitSet::load([dir.path().join("notes.txt")]),
        Err(Error::NotQuadlet { .. })
    ));
    let err = UnitSet::load([Path::new("/nonexistent/dir")]).unwrap_err();
    assert!(matches!(err, Error::Read { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("cannot read /nonexistent/dir: "),
        "{err}"
    );
}

#[test]
fn edits_keep_comments_and_order() {
    let text = "# Managed by hand\n[Unit]\nDescription=Redis for Immich\n\n[Container]\n\
                Image=docker.io/valkey/valkey:8\n# the network\nNetwork=systemd-photos\n\n\
                [Install]\nWantedBy=default.target\n";
    let mut file = UnitFile::parse(text).unwrap();
    file.set("Container", "Network", "photos.network").unwrap();
    file.append("Container", "Notify", "healthy").unwrap();
    assert_eq!(
        file.render(),
        text.replace(
            "Network=systemd-photos\n",
            "Network=photos.network\nNotify=healthy\n"
        )
    );
    let unit = AnyUnit::from_unit_file("redis.container", &file).unwrap();
    let AnyUnit::Container(unit) = unit else {
        panic!("a container")
    };
    assert_eq!(unit.container.notify, Some(Notify::Healthy));
}
