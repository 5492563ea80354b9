//! Needs no host.
//!
//! The next step after the database layer: the Immich server and its
//! machine-learning container as Quadlet units, as `homelab-immich` writes them
//! from the same configuration as the layer (the defaults here; give a
//! configuration file to use yours), linted together with the layer's own
//! units. `immich-db server units` writes the same files.
//!
//! - The server `Requires=` and comes `After=` both database services; it
//!   reads its passwords from `DB_PASSWORD_FILE` and `REDIS_PASSWORD_FILE`,
//!   files mounted from the same Podman secrets the databases use, never
//!   written in a unit file.
//! - Both join the layer's network, which is not internal: the machine
//!   learning downloads its models into the model cache, and the server
//!   reaches it by its container name.
//!
//! Run it with `cargo run -p immich-db-examples --example immich_server_units
//! [CONFIG [DIR]]`; give a directory to also write the server's files there.

use std::path::PathBuf;
use std::process::ExitCode;

use homelab_immich::config::{self, Loaded};
use homelab_immich::server::{self, ServerUnitsOptions};
use homelab_immich::{desired, server::environment};
use homelab_quadlet::{PodmanVersion, Severity};

fn main() -> ExitCode {
    let target = PodmanVersion::new(5, 4, 2);
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let loaded = match args.next() {
        Some(file) => config::load(Some(&file)),
        None => Ok(Loaded::defaults()),
    };
    let deployment = match loaded.and_then(|l| l.validate()) {
        Ok(deployment) => deployment,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };

    // What the server needs of the layer: names and password files.
    print!("{}", environment(&deployment).env_file());

    // The units, refused when the generator of `target` would refuse them.
    let units = match server::units(&deployment, target) {
        Ok(units) => units,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    for unit in &units {
        println!(
            "\n# {} (service {})\n{}",
            unit.file_name, unit.service, unit.content
        );
    }
    let mut all = desired::units(&deployment, target);
    all.extend(units.iter().cloned());
    let findings = desired::lint(&all, target, deployment.scope);
    for finding in &findings {
        println!("{finding}");
    }
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    println!(
        "lint: {} unit(s) checked together for podman {target}: {errors} error(s), {} other finding(s)",
        all.len(),
        findings.len() - errors
    );

    if let Some(dir) = args.next() {
        let options = ServerUnitsOptions::new()
            .output(&dir)
            .podman(target.to_string());
        match server::render_units(&deployment, &options) {
            Ok(written) => {
                for file in written.files {
                    println!("wrote {}", file.path.display());
                }
            }
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if errors > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
