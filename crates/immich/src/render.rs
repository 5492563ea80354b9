//! The deployment's unit files, written for a given podman release into a
//! directory, changing nothing else: for review, for a host that runs another
//! podman, or to keep the units in git or Ansible.

use std::path::{Path, PathBuf};

use homelab_quadlet::{PodmanVersion, Severity};
use serde::Serialize;

use crate::config::Deployment;
use crate::desired;
use crate::error::{Error, Result};
use crate::files::write_atomic;

/// What to render, and where.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RenderOptions {
    /// The directory to write the unit files into (created when missing).
    pub output: PathBuf,
    /// The podman release the units are for (`None`: the installed podman,
    /// else the newest release this library knows).
    pub podman: Option<String>,
    /// Units for rootless (`Some(true)`) or rootful podman (`None`: as the user
    /// running this).
    pub rootless: Option<bool>,
}

impl RenderOptions {
    /// Units for the installed podman, as this user runs it, into `output`.
    pub fn new(output: impl Into<PathBuf>) -> Self {
        Self {
            output: output.into(),
            podman: None,
            rootless: None,
        }
    }

    /// For another podman release (`X.Y.Z`).
    #[must_use]
    pub fn podman(mut self, release: impl Into<String>) -> Self {
        self.podman = Some(release.into());
        self
    }

    /// For rootless or rootful podman.
    #[must_use]
    pub fn rootless(mut self, rootless: bool) -> Self {
        self.rootless = Some(rootless);
        self
    }
}

/// What happened to a file.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Written {
    /// It was not there.
    Created,
    /// It was there with other content.
    Updated,
    /// It was there as rendered.
    Unchanged,
}

/// One unit file rendered.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct RenderedFile {
    /// Where it was written.
    pub path: PathBuf,
    /// The service the generator makes of it.
    pub service: String,
    /// What happened to the file.
    pub written: Written,
}

/// The unit files rendered.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Rendered {
    /// The podman release they are for.
    pub podman: PodmanVersion,
    /// Whether they are for rootless podman.
    pub rootless: bool,
    /// The files.
    pub files: Vec<RenderedFile>,
    /// Where they go on the host, for the scope.
    pub unit_dir: PathBuf,
    /// The manager that runs them.
    #[serde(skip)]
    pub scope: crate::config::Scope,
}

/// The release the units are for: the one asked for, else the installed one,
/// else the newest known.
pub(crate) fn target(asked: Option<&str>) -> Result<PodmanVersion> {
    if let Some(text) = asked {
        let version: PodmanVersion = text.parse().map_err(|_| {
            Error::bad_input(format!("`--podman {text}` is not a podman release"))
                .help("give it as X.Y.Z, for example --podman 4.9.3")
        })?;
        if version < PodmanVersion::V4_4 {
            return Err(Error::bad_input(format!(
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
                Error::failed(format!("cannot read {}: {e}", path.display()))
                    .help("check the permissions of the output directory"),
            );
        }
    };
    write_atomic(path, content.as_bytes()).map_err(|e| {
        Error::failed(format!("cannot write {}: {e}", path.display()))
            .help("check the output directory and its permissions")
    })?;
    Ok(written)
}

/// Writes the deployment's unit files for a podman release into a directory,
/// changing nothing else; refuses (and writes nothing) when that release's
/// generator would refuse them.
pub fn render(deployment: &Deployment, options: &RenderOptions) -> Result<Rendered> {
    let podman = target(options.podman.as_deref())?;
    let mut deployment = deployment.clone();
    if let Some(rootless) = options.rootless {
        deployment.rootless = rootless;
    }
    let units = desired::units(&deployment, podman);
    // What the generator of that release would refuse is not written.
    let errors: Vec<String> = desired::lint(&units, podman, deployment.scope)
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(ToString::to_string)
        .collect();
    if !errors.is_empty() {
        return Err(Error::bad_input(format!(
            "the units for podman {podman} would not pass its generator: {}",
            errors.join("; ")
        ))
        .help("change the configuration, or render for a newer podman; nothing was written"));
    }
    let mut files = Vec::new();
    for unit in &units {
        let path = options.output.join(&unit.file_name);
        let written = write(&path, &unit.content)?;
        files.push(RenderedFile {
            path,
            service: unit.service.clone(),
            written,
        });
    }
    Ok(Rendered {
        podman,
        rootless: deployment.rootless,
        files,
        unit_dir: deployment.unit_dir.clone(),
        scope: deployment.scope,
    })
}
