//! `render`: the deployment's unit files, written for a given podman release into
//! a directory, changing nothing else: for review, for a host that runs another
//! podman, or to keep the units in git or Ansible.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;
use homelab_quadlet::{PodmanVersion, Severity};
use serde::Serialize;

use crate::config::Deployment;
use crate::desired;
use crate::error::{Failure, Result};
use crate::files::write_atomic;
use crate::output::Outcome;

#[derive(Debug, Args)]
pub(crate) struct RenderArgs {
    /// The directory to write the unit files into (created when missing)
    #[arg(long, short = 'o', value_name = "DIR")]
    pub(crate) output: PathBuf,
    /// The podman release the units are for [default: the installed podman, else
    /// the newest release this tool knows]
    #[arg(long, value_name = "X.Y.Z")]
    pub(crate) podman: Option<String>,
    /// Units for rootless podman (an ordinary user's manager) [default: as the
    /// user running this]
    #[arg(long, conflicts_with = "rootful")]
    pub(crate) rootless: bool,
    /// Units for rootful podman (root's manager or the system's) [default: as the
    /// user running this]
    #[arg(long)]
    pub(crate) rootful: bool,
}

/// What happened to a file.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Written {
    Created,
    Updated,
    Unchanged,
}

#[derive(Debug, Serialize)]
struct File {
    path: PathBuf,
    service: String,
    written: Written,
}

#[derive(Debug, Serialize)]
struct Rendered {
    podman: PodmanVersion,
    rootless: bool,
    files: Vec<File>,
}

/// The release the units are for: the one asked for, else the installed one,
/// else the newest known.
fn target(asked: Option<&str>) -> Result<PodmanVersion> {
    if let Some(text) = asked {
        let version: PodmanVersion = text.parse().map_err(|_| {
            Failure::bad_input(format!("`--podman {text}` is not a podman release"))
                .help("give it as X.Y.Z, for example --podman 4.9.3")
        })?;
        if version < PodmanVersion::V4_4 {
            return Err(Failure::bad_input(format!(
                "podman {version} has no Quadlet: it arrived in 4.4"
            ))
            .help("give a release from 4.4 on"));
        }
        return Ok(version);
    }
    let installed = std::process::Command::new("podman")
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| {
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .last()
                .and_then(|v| v.parse().ok())
        });
    Ok(installed.unwrap_or(PodmanVersion::LATEST_KNOWN))
}

fn write(path: &Path, content: &str) -> Result<Written> {
    let written = match std::fs::read_to_string(path) {
        Ok(existing) if existing == content => return Ok(Written::Unchanged),
        Ok(_) => Written::Updated,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Written::Created,
        Err(e) => {
            return Err(
                Failure::failed(format!("cannot read {}: {e}", path.display()))
                    .help("check the permissions of the output directory"),
            );
        }
    };
    write_atomic(path, content.as_bytes()).map_err(|e| {
        Failure::failed(format!("cannot write {}: {e}", path.display()))
            .help("check the output directory and its permissions")
    })?;
    Ok(written)
}

pub(crate) fn run(deployment: &Deployment, args: &RenderArgs) -> Result<Outcome> {
    let podman = target(args.podman.as_deref())?;
    let mut deployment = deployment.clone();
    if args.rootless || args.rootful {
        deployment.rootless = args.rootless;
    }
    let units = desired::units(&deployment, podman);
    // What the generator of that release would refuse is not written.
    let errors: Vec<String> = desired::lint(&units, podman, deployment.scope)
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(ToString::to_string)
        .collect();
    if !errors.is_empty() {
        return Err(Failure::bad_input(format!(
            "the units for podman {podman} would not pass its generator: {}",
            errors.join("; ")
        ))
        .help("change the configuration, or render for a newer podman; nothing was written"));
    }
    let mut files = Vec::new();
    for unit in &units {
        let path = args.output.join(&unit.file_name);
        let written = write(&path, &unit.content)?;
        files.push(File {
            path,
            service: unit.service.clone(),
            written,
        });
    }
    let mut human = String::new();
    for file in &files {
        let what = match file.written {
            Written::Created => "wrote",
            Written::Updated => "updated",
            Written::Unchanged => "unchanged",
        };
        let _ = writeln!(
            human,
            "{what:<9} {} ({})",
            file.path.display(),
            file.service
        );
    }
    let _ = write!(
        human,
        "render: the units for {} podman {podman}; copy them to {} and run `systemctl{} daemon-reload`",
        if deployment.rootless {
            "rootless"
        } else {
            "rootful"
        },
        deployment.unit_dir.display(),
        match deployment.scope {
            crate::config::Scope::User => " --user",
            crate::config::Scope::System => "",
        }
    );
    Outcome::ok(
        Rendered {
            podman,
            rootless: deployment.rootless,
            files,
        },
        human,
    )
}
