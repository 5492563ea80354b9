//! Needs no host.
//!
//! Render and lint a `.container` unit for any service with `homelab-quadlet`:
//! here a password manager, Vaultwarden, on a network of its own, with its admin
//! token from a Podman secret and its data on a host directory.
//!
//! The lint checks units as a set, the way podman's generator reads a
//! directory. The first attempt below repeats two mistakes from a real
//! deployment journal, a `.network` reference by the network's podman name and
//! a token in a plain environment variable; the lint names both, with the fix.
//!
//! `cargo run -p immich-db-examples --example render_container [NAME] [IMAGE]`

use std::process::ExitCode;

use homelab_quadlet::{
    Container, ContainerUnit, InstallSection, KeyValue, Network, NetworkUnit, PodmanVersion,
    RestartPolicy, Secret, ServiceSection, Severity, UnitSection, UnitSet, VolumeMount, lint,
};

fn service_unit(name: &str, image: &str, mistakes: bool) -> ContainerUnit {
    let mut container = Container {
        image: Some(image.to_owned()),
        container_name: Some(name.to_owned()),
        // The unit file, not podman's name for the network: referencing the file
        // makes the service depend on the network's service.
        network: vec![if mistakes {
            format!("systemd-{name}.network")
        } else {
            format!("{name}.network")
        }],
        publish_port: vec!["127.0.0.1:8080:80".into()],
        environment: vec![KeyValue::new("SIGNUPS_ALLOWED", "false")],
        volume: vec![VolumeMount::bind(format!("/srv/{name}"), "/data").with_option("Z")],
        ..Container::default()
    };
    if mistakes {
        container
            .environment
            .push(KeyValue::new("ADMIN_TOKEN", "correct-horse-battery-staple"));
    } else {
        container.secret = vec![Secret::env(format!("{name}-admin-token"), "ADMIN_TOKEN")];
    }
    ContainerUnit {
        unit: UnitSection {
            description: Some(format!("{name} password manager")),
            ..UnitSection::default()
        },
        container,
        service: ServiceSection {
            restart: Some(RestartPolicy::Always),
            ..ServiceSection::default()
        },
        install: InstallSection::default_target(),
        ..ContainerUnit::default()
    }
}

fn network_unit() -> NetworkUnit {
    NetworkUnit {
        network: Network {
            subnet: vec!["10.89.7.0/24".parse().expect("a valid subnet")],
            ..Network::default()
        },
        install: InstallSection::default_target(),
        ..NetworkUnit::default()
    }
}

/// Renders both units, lints them together, prints the findings; returns the
/// number of errors.
fn check(name: &str, image: &str, mistakes: bool) -> Result<usize, homelab_quadlet::Error> {
    let container = service_unit(name, image, mistakes).render()?;
    let network = network_unit().render()?;
    let mut set = UnitSet::new();
    set.insert(&format!("{name}.network"), &network)?;
    set.insert(&format!("{name}.container"), &container)?;
    if !mistakes {
        let names = service_unit(name, image, false).names(&format!("{name}.container"))?;
        println!(
            "# {name}.container (service {})\n{container}",
            names.service
        );
    }
    let findings = lint(&set, PodmanVersion::new(5, 4, 2));
    for finding in &findings {
        println!("{finding}");
    }
    Ok(findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count())
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "vaultwarden".to_owned());
    let image = args
        .next()
        .unwrap_or_else(|| "docker.io/vaultwarden/server:1.32.5".to_owned());

    println!("== first attempt");
    let first = match check(&name, &image, true) {
        Ok(errors) => errors,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    println!("== fixed");
    let fixed = match check(&name, &image, false) {
        Ok(errors) => errors,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    println!("errors: {first} in the first attempt, {fixed} once fixed");
    if first >= 2 && fixed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
