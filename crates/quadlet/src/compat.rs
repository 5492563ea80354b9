//! Writing a unit for an older podman: keys its generator does not know are turned
//! into the equivalent `PodmanArgs=` where one exists; anything else is an error.

use std::path::Path;

use crate::Error;
use crate::naming::{self, UnitKind};
use crate::syntax::{Entry, UnitFile};
use crate::version::{self, Feature, PodmanVersion, QUADLET_SECTION};
use crate::words;

fn too_new(
    file: &Path,
    section: &str,
    key: &str,
    since: PodmanVersion,
    target: PodmanVersion,
) -> Error {
    Error::TooNew {
        file: file.to_path_buf(),
        section: section.to_owned(),
        key: key.to_owned(),
        since,
        target,
    }
}

/// Rewrites `file` (a `kind` unit) so that podman `target`'s generator accepts it
/// with the same meaning.
///
/// Before podman 5.0 a container's service cannot wait for its health check
/// (`Notify=healthy`): there, the service is held starting by an
/// `ExecStartPost=` that runs the health check until it passes, so that units
/// ordered after it still start after readiness.
///
/// ```
/// use homelab_quadlet::{adapt, PodmanVersion, UnitFile, UnitKind};
/// use std::path::Path;
///
/// let mut file = UnitFile::parse("[Container]\nImage=x\nShmSize=128m\n")?;
/// adapt(&mut file, Path::new("db.container"), UnitKind::Container, PodmanVersion::V4_6)?;
/// assert_eq!(file.canonical(), "[Container]\nImage=x\nPodmanArgs=--shm-size 128m\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::TooNew`] for the kind of file, a key or a value that `target` cannot
/// express.
pub fn adapt(
    file: &mut UnitFile,
    path: &Path,
    kind: UnitKind,
    target: PodmanVersion,
) -> Result<(), Error> {
    let section = kind.section();
    if target < kind.since() {
        return Err(too_new(
            path,
            section,
            &format!("[{section}]"),
            kind.since(),
            target,
        ));
    }
    // Keys of the [Quadlet] section have no podman option.
    for entry in file.entries(QUADLET_SECTION) {
        if let Some(info) = version::quadlet_key_info(entry.key())
            && info.since > target
        {
            return Err(too_new(
                path,
                QUADLET_SECTION,
                entry.key(),
                info.since,
                target,
            ));
        }
    }
    if kind == UnitKind::Container && Feature::NotifyHealthy.since() > target {
        wait_for_health_after_start(file, path, target)?;
    }
    // Values whose meaning arrived later than their key.
    for entry in file.entries(section) {
        let feature = Feature::of_value(kind, entry);
        if let Some(feature) = feature
            && feature.since() > target
        {
            return Err(too_new(path, section, entry.key(), feature.since(), target));
        }
    }
    for (section_name, entry) in file.all_entries() {
        if section_name == "Unit"
            && naming::DEPENDENCY_KEYS.contains(&entry.key())
            && words::split_list(entry.value())
                .iter()
                .any(|n| naming::is_quadlet_file_name(n))
            && Feature::UnitFileDependencies.since() > target
        {
            return Err(too_new(
                path,
                "Unit",
                entry.key(),
                Feature::UnitFileDependencies.since(),
                target,
            ));
        }
    }
    // Keys: to PodmanArgs= where possible.
    let mut failure = None;
    file.rewrite_section(section, |entry: &Entry| {
        let info = version::key_info(kind, entry.key())?;
        if info.since <= target || failure.is_some() {
            return None;
        }
        if let Some(args) = version::as_podman_args(kind, &info, entry.unquoted(), target) {
            Some(vec![("PodmanArgs".to_owned(), args)])
        } else {
            failure = Some(too_new(path, section, entry.key(), info.since, target));
            None
        }
    });
    match failure {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// The command that holds a service starting until its container's health
/// check passes: `podman healthcheck run` (podman 4.x and later) once a second.
/// `%N` is systemd's unit name, as the generator names a container without
/// `ContainerName=`.
fn health_wait_command(container: &str) -> String {
    format!(
        "/bin/sh -c 'until podman healthcheck run {container} >/dev/null 2>&1; do sleep 1; done'"
    )
}

/// `Notify=healthy` for a release without it: the default notification (the
/// container runs) and an `ExecStartPost=` that waits for health.
fn wait_for_health_after_start(
    file: &mut UnitFile,
    path: &Path,
    target: PodmanVersion,
) -> Result<(), Error> {
    let section = UnitKind::Container.section();
    let healthy = file
        .last_entry(section, "Notify")
        .is_some_and(|e| Feature::of_value(UnitKind::Container, e) == Some(Feature::NotifyHealthy));
    if !healthy {
        return Ok(());
    }
    let has_check = file
        .last_entry(section, "HealthCmd")
        .is_some_and(|e| !e.unquoted().is_empty() && !e.unquoted().eq_ignore_ascii_case("none"));
    // A name with a shell or systemd meaning cannot be put in the command.
    let name = match file.get(section, "ContainerName") {
        Some(name) => name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
            .then(|| name.to_owned()),
        None => Some("systemd-%N".to_owned()),
    };
    let (true, Some(name)) = (has_check, name) else {
        return Err(too_new(
            path,
            section,
            "Notify",
            Feature::NotifyHealthy.since(),
            target,
        ));
    };
    file.remove(section, "Notify");
    file.append("Service", "ExecStartPost", &health_wait_command(&name))
        .map_err(|source| Error::Unwritable {
            file: path.to_path_buf(),
            section: "Service".to_owned(),
            source,
        })?;
    Ok(())
}
