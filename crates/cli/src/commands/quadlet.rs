//! `quadlet fmt` and `quadlet lint`: thin wrappers over the quadlet library.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use homelab_quadlet::{LintOptions, PodmanVersion, Scope, Severity, UnitSet};
use serde::Serialize;

use homelab_immich::{Error, Result};

use crate::args::QuadletCommand;
use crate::output::Reply;

pub(crate) fn run(command: &QuadletCommand) -> Result<Reply> {
    match command {
        QuadletCommand::Fmt {
            files,
            write,
            check,
        } => fmt(files, *write, *check),
        QuadletCommand::Lint {
            paths,
            podman,
            system,
        } => lint(paths, podman.as_deref(), *system),
    }
}

fn quadlet_failure(e: &homelab_quadlet::Error) -> Error {
    Error::bad_input(e.to_string()).help("fix the file at that place; nothing was changed")
}

#[derive(Debug, Serialize)]
struct FormattedFile {
    file: PathBuf,
    changed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
}

fn fmt(files: &[PathBuf], write: bool, check: bool) -> Result<Reply> {
    // Every file is read and checked before any is rewritten.
    let mut results = Vec::new();
    for file in files {
        let formatted = homelab_quadlet::format_file(file).map_err(|e| quadlet_failure(&e))?;
        results.push((file, formatted));
    }
    let mut human = String::new();
    let mut report = Vec::new();
    for (file, formatted) in &results {
        if write && formatted.changed {
            homelab_quadlet::format_in_place(file)
                .map_err(|e| Error::failed(format!("cannot rewrite {}: {e}", file.display())))?;
        }
        if check || write {
            if formatted.changed {
                let verb = if write { "formatted" } else { "would reformat" };
                let _ = writeln!(human, "{verb} {}", file.display());
            }
        } else {
            if results.len() > 1 {
                let _ = writeln!(human, "# {}", file.display());
            }
            human.push_str(&formatted.text);
        }
        report.push(FormattedFile {
            file: (*file).clone(),
            changed: formatted.changed,
            text: (!check && !write).then(|| formatted.text.clone()),
        });
    }
    let unformatted = report.iter().filter(|r| r.changed).count();
    if check && unformatted == 0 {
        human.push_str("all files are formatted");
    }
    Ok(Reply::new(&serde_json::json!({ "files": report }), human)?
        .failed_if(check && unformatted > 0))
}

/// The installed podman's release, from its client (no service needed).
fn installed_podman() -> Option<PodmanVersion> {
    let out = std::process::Command::new("podman")
        .args(["version", "--format", "{{.Client.Version}}"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn lint(paths: &[PathBuf], podman: Option<&str>, system: bool) -> Result<Reply> {
    let target = match podman {
        Some(text) => text.parse::<PodmanVersion>().map_err(|e| {
            Error::bad_input(format!("--podman {text:?} is not a podman release: {e}"))
                .help("write it as MAJOR.MINOR or MAJOR.MINOR.PATCH, such as 5.4.2")
        })?,
        None => installed_podman().unwrap_or(PodmanVersion::LATEST_KNOWN),
    };
    let set = UnitSet::load(paths.iter().map(PathBuf::as_path)).map_err(|e| quadlet_failure(&e))?;
    let options = LintOptions {
        target,
        scope: if system { Scope::System } else { Scope::User },
    };
    // The library reports files that do not parse as parse-error findings, sorted
    // by file and line.
    let findings = options.run(&set);
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let mut human = String::new();
    for finding in &findings {
        let _ = writeln!(human, "{finding}");
    }
    let files = set.units().len();
    let _ = write!(
        human,
        "{files} unit(s) checked for podman {target}: {errors} error(s), {} other finding(s)",
        findings.len() - errors
    );
    let paths: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    Ok(Reply::new(
        &serde_json::json!({
            "ok": errors == 0,
            "target": target.to_string(),
            "paths": paths,
            "units": files,
            "findings": findings,
        }),
        human,
    )?
    .failed_if(errors > 0))
}
