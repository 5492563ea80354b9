//! What the host must provide before deploy changes anything: Podman with its
//! Quadlet generator, a reachable systemd manager, the BTRFS pool, the images, a
//! free subnet. Missing pieces are errors (exit 3); risky ones are warnings.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{Deployment, Scope};
use crate::error::{Error, Problem, Result};
use crate::layer::Layer;
use crate::layout::{self, PostgresLayout};

/// Where distributions put Podman's Quadlet generator.
const QUADLET_GENERATORS: &[&str] = &[
    "/usr/libexec/podman/quadlet",
    "/usr/lib/podman/quadlet",
    "/usr/local/libexec/podman/quadlet",
];

/// One precondition's result.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Finding {
    /// What was checked (`podman`, `pool`, `images`).
    pub name: &'static str,
    /// Whether it is in order.
    pub severity: Severity,
    /// What was found.
    pub detail: String,
    /// How to fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// How a precondition turned out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Severity {
    /// In order.
    Ok,
    /// It works, but something should be looked at.
    Warning,
    /// Missing: nothing can be deployed.
    Error,
}

/// Results of all preconditions; errors are reported together.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct HostReport {
    /// Every check, in order.
    pub findings: Vec<Finding>,
    /// Whether NOCOW can be set (the pool is on BTRFS).
    pub nocow_possible: bool,
    /// The podman release, for linting the units against it.
    #[serde(skip)]
    pub podman_version: Option<homelab_quadlet::PodmanVersion>,
    /// Where the PostgreSQL image keeps its data, read from the image.
    #[serde(skip)]
    pub postgres_layout: Option<PostgresLayout>,
}

impl HostReport {
    fn ok(&mut self, name: &'static str, detail: impl Into<String>) {
        self.push(name, Severity::Ok, detail, None::<String>);
    }
    fn warn(&mut self, name: &'static str, detail: impl Into<String>, fix: impl Into<String>) {
        self.push(name, Severity::Warning, detail, Some(fix));
    }
    fn error(&mut self, name: &'static str, detail: impl Into<String>, fix: impl Into<String>) {
        self.push(name, Severity::Error, detail, Some(fix));
    }
    fn push(
        &mut self,
        name: &'static str,
        severity: Severity,
        detail: impl Into<String>,
        fix: Option<impl Into<String>>,
    ) {
        self.findings.push(Finding {
            name,
            severity,
            detail: detail.into(),
            fix: fix.map(Into::into),
        });
    }

    /// The findings that are warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
    }

    /// Exit 3 with every failed precondition, or `Ok`. Several failed ones are
    /// listed each with its own place and fix.
    pub(crate) fn into_result(self) -> Result<Self> {
        let errors: Vec<&Finding> = self
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .collect();
        match errors.as_slice() {
            [] => Ok(self),
            [only] => {
                let help = only.fix.as_deref().map_or_else(
                    || "nothing was changed".to_owned(),
                    |fix| format!("{fix}; nothing was changed"),
                );
                Err(
                    Error::precondition(format!("a host precondition is not met: {}", only.detail))
                        .at(only.name)
                        .help(help),
                )
            }
            several => Err(Error::precondition(format!(
                "{} host preconditions are not met",
                several.len()
            ))
            .problems(
                several
                    .iter()
                    .map(|f| Problem {
                        what: f.detail.clone(),
                        location: Some(f.name.to_owned()),
                        help: f.fix.clone(),
                    })
                    .collect(),
            )
            .help("fix each of them; nothing was changed")),
        }
    }
}

fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let _ = fields.next();
        (fields.next()?.parse::<u32>().ok()? == uid).then(|| name.to_owned())
    })
}

/// The nearest existing ancestor of a path.
fn existing_ancestor(path: &Path) -> Option<PathBuf> {
    path.ancestors().find(|p| p.exists()).map(Path::to_path_buf)
}

/// The installed podman's release (`podman --version`, no service needed: the
/// service's own version query is slow).
async fn installed_podman() -> std::result::Result<homelab_podman::Version, String> {
    let out = tokio::process::Command::new("podman")
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| format!("cannot run podman: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text
        .split_whitespace()
        .last()
        .filter(|_| out.status.success())
        .ok_or_else(|| format!("`podman --version` answered {:?}", text.trim()))?;
    Ok(homelab_podman::Version::new(version, ""))
}

/// The two questions to the host that need no connection: `podman --version`,
/// and whether the systemd manager answers (`None`: the system scope needs
/// root). Started before connecting, they run while podman's service is
/// reached, which may first have to start.
#[derive(Debug)]
pub(crate) struct HostProbe {
    podman: tokio::task::JoinHandle<std::result::Result<homelab_podman::Version, String>>,
    manager: tokio::task::JoinHandle<Option<homelab_systemd::Result<()>>>,
}

impl HostProbe {
    /// Starts both; call it inside the runtime.
    pub(crate) fn start(systemd: std::sync::Arc<dyn homelab_systemd::Manager>) -> Self {
        let root = rustix::process::getuid().is_root();
        let scope = systemd.scope();
        Self {
            podman: tokio::spawn(installed_podman()),
            manager: tokio::spawn(async move {
                if scope == Scope::User || root {
                    Some(systemd.reachable().await)
                } else {
                    None
                }
            }),
        }
    }
}

/// An image in local storage, or `None` when it is not there.
async fn inspect_if_present(
    ctx: &Layer,
    image: &str,
) -> homelab_podman::Result<Option<homelab_podman::ImageInfo>> {
    match ctx.runtime.inspect_image(image).await {
        Ok(info) => Ok(Some(info)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// The cluster in PostgreSQL's data directory must be of the image's major,
/// where the image keeps it: a server of another major does not start on it
/// (and restarts in a loop), and an image that looks elsewhere would make a
/// new, empty cluster beside it. A directory this user cannot read is left to
/// the storage check.
fn postgres_data(report: &mut HostReport, d: &Deployment, layout: &PostgresLayout) {
    let dir = &d.dirs.postgres;
    let image = &d.config.postgres.image;
    let Ok(Some(cluster)) = layout::find_cluster(dir, layout) else {
        return;
    };
    let expected = layout.cluster_dir(dir);
    match layout.major {
        Some(major) if major != cluster.major => report.error(
            "postgres data",
            format!(
                "the data directory holds a PostgreSQL {} cluster ({}), but the image {image} is PostgreSQL {major}: its server cannot start on that data",
                cluster.major,
                cluster.dir.display()
            ),
            format!(
                "move the data to PostgreSQL {major} with `immich-db upgrade --image {image}` (it keeps the PostgreSQL {} cluster for a rollback), or set [postgres] image back to a PostgreSQL {} image",
                cluster.major, cluster.major
            ),
        ),
        _ if cluster.dir != expected => report.error(
            "postgres data",
            format!(
                "the data directory holds a PostgreSQL {} cluster in {}, but the image {image} keeps its cluster in {} (PGDATA {} below the mount {}): it would create a new, empty one",
                cluster.major,
                cluster.dir.display(),
                expected.display(),
                layout.pgdata,
                layout.mount
            ),
            "use an image laid out as the one that created the cluster, or move the data to the new image with `immich-db upgrade`",
        ),
        _ => report.ok(
            "postgres data",
            format!(
                "the PostgreSQL {} cluster in {} fits the image",
                cluster.major,
                cluster.dir.display()
            ),
        ),
    }
}

/// Checks everything, changing nothing but, where an image is missing, pulling
/// it (an image pull is a cache fill, not a change to the deployment). `probe`
/// holds the questions asked early, if they were; else they are asked now.
pub(crate) async fn check(ctx: &Layer, allow_non_btrfs: bool, pull: bool) -> HostReport {
    let probe = ctx
        .probe
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    let d = &ctx.deployment;
    let mut report = HostReport::default();

    // The questions to Podman and systemd are independent: ask them all at once.
    let subnet = d.subnet;
    let uid = rustix::process::getuid().as_raw();
    let HostProbe { podman, manager } =
        probe.unwrap_or_else(|| HostProbe::start(ctx.systemd.clone()));
    let (version, manager, postgres_image, valkey_image, overlaps, secrets) = tokio::join!(
        async {
            podman
                .await
                .unwrap_or_else(|e| Err(format!("cannot run podman: {e}")))
        },
        async {
            manager.await.unwrap_or_else(|e| {
                Some(Err(homelab_systemd::Error::Unreadable {
                    command: "systemctl is-system-running".into(),
                    detail: e.to_string(),
                }))
            })
        },
        inspect_if_present(ctx, &d.config.postgres.image),
        ctx.runtime.image_exists(&d.config.valkey.image),
        ctx.runtime.overlapping_networks(&subnet),
        ctx.secrets.list(),
    );

    // Podman and Quadlet: the installed release is the one whose generator
    // reads the units.
    match version {
        Ok(v) if v.at_least(4, 4) => {
            report.podman_version = v.version.parse().ok();
            report.ok("podman", format!("podman {}", v.version));
        }
        Ok(v) => report.error(
            "podman",
            format!("podman {} is too old for Quadlet", v.version),
            "install podman 4.4 or newer (5.x recommended)",
        ),
        Err(e) => report.error(
            "podman",
            format!("cannot tell the installed podman's version: {e}"),
            "check that podman is installed",
        ),
    }
    match QUADLET_GENERATORS.iter().find(|p| Path::new(p).exists()) {
        Some(path) => report.ok("quadlet", format!("Quadlet generator at {path}")),
        None => report.error(
            "quadlet",
            "Podman's Quadlet generator is not installed",
            "install podman 4.4 or newer with its systemd generator",
        ),
    }

    // systemd.
    match manager {
        None => report.error(
            "systemd",
            "the system scope needs root",
            "run as root, or set scope = \"user\" in [systemd]",
        ),
        Some(Ok(())) => report.ok("systemd", "the systemd manager answers"),
        Some(Err(e)) => report.error(
            "systemd",
            format!("the systemd manager for the {} scope does not answer: {e}", d.scope),
            match d.scope {
                Scope::User => "log in as the user (or `loginctl enable-linger USER` and set XDG_RUNTIME_DIR=/run/user/UID)",
                Scope::System => "check that systemd runs as PID 1",
            },
        ),
    }
    if d.scope == Scope::User {
        let name = user_name(uid).unwrap_or_else(|| uid.to_string());
        if Path::new("/var/lib/systemd/linger").join(&name).exists() {
            report.ok("linger", format!("lingering is enabled for {name}"));
        } else {
            report.warn(
                "linger",
                format!("lingering is not enabled for {name}: the services will not start at boot until they log in"),
                format!("loginctl enable-linger {name}"),
            );
        }
    }

    // The pool.
    let pool = &d.pool;
    if pool.is_dir() {
        match homelab_btrfs::is_btrfs(pool) {
            Ok(true) => {
                report.nocow_possible = true;
                report.ok("pool", format!("{} is on BTRFS", pool.display()));
            }
            Ok(false) => {
                let fs = homelab_btrfs::filesystem(pool)
                    .map_or_else(|_| "another filesystem".to_owned(), |f| f.to_string());
                if allow_non_btrfs {
                    report.warn(
                        "pool",
                        format!("{} is on {fs}, not BTRFS: NOCOW has no effect there, the databases keep copy-on-write", pool.display()),
                        "move the pool to BTRFS for database performance",
                    );
                } else {
                    report.error(
                        "pool",
                        format!("the pool {} is on {fs}, not BTRFS: NOCOW has no effect there", pool.display()),
                        "point [storage] pool at a BTRFS mount, or pass --allow-non-btrfs to proceed anyway",
                    );
                }
            }
            Err(e) => report.error(
                "pool",
                format!("cannot tell the filesystem of {}: {e}", pool.display()),
                "check the pool's path and permissions",
            ),
        }
    } else {
        report.error(
            "pool",
            format!("the pool {} does not exist", pool.display()),
            "mount the BTRFS pool there, or fix [storage] pool",
        );
    }

    // Directories: a file in the way, or a path that cannot be created.
    if pool.is_dir()
        && let Err(e) = crate::plan::dir_plans(d, report.nocow_possible)
    {
        report.error("storage", e.what, e.help.unwrap_or_default());
    }

    // The unit directory must be writable.
    match existing_ancestor(&d.unit_dir) {
        Some(dir) if rustix::fs::access(&dir, rustix::fs::Access::WRITE_OK).is_ok() => {
            report.ok("unit_dir", format!("units go to {}", d.unit_dir.display()));
        }
        _ => report.error(
            "unit_dir",
            format!(
                "the unit directory {} cannot be written",
                d.unit_dir.display()
            ),
            "run as the user who owns it, or set [systemd] unit_dir",
        ),
    }

    // Images. PostgreSQL's says where it keeps its data.
    let mut postgres_info = postgres_image.as_ref().ok().cloned().flatten();
    for (key, image, exists) in [
        (
            "postgres",
            &d.config.postgres.image,
            postgres_image.map(|info| info.is_some()),
        ),
        ("valkey", &d.config.valkey.image, valkey_image),
    ] {
        match exists {
            Ok(true) => report.ok("images", format!("image {image} is present")),
            // Images under localhost/ were built or loaded here: no registry
            // has them.
            Ok(false)
                if pull && !homelab_podman::ImageRef::parse(image).is_ok_and(|i| i.is_local()) =>
            {
                match ctx.runtime.pull_image(image).await {
                    Ok(info) => {
                        if key == "postgres" {
                            postgres_info = Some(info);
                        }
                        report.ok("images", format!("image {image} pulled"));
                    }
                    Err(homelab_podman::Error::PullFailed { reason, .. }) => report.error(
                        "images",
                        format!(
                            "the image {image} ([{key}] image) is not present and cannot be pulled: {reason}"
                        ),
                        format!(
                            "check [{key}] image and that its registry is reachable, or load the image (`podman load`)"
                        ),
                    ),
                    Err(e) => report.error(
                        "images",
                        format!(
                            "the image {image} ([{key}] image) is not present and cannot be pulled: {e}"
                        ),
                        format!(
                            "pull it by hand (`podman pull {image}`), load it, or fix [{key}] image"
                        ),
                    ),
                }
            }
            Ok(false) => report.error(
                "images",
                format!("the image {image} ([{key}] image) is not present"),
                format!("pull or build it (`podman pull {image}`), or fix [{key}] image"),
            ),
            Err(e) => report.error(
                "images",
                format!("cannot look up the image {image}: {e}"),
                "check that the Podman service answers",
            ),
        }
    }

    if let Some(info) = &postgres_info {
        let layout = PostgresLayout::of_image(info, &d.config.postgres.image);
        postgres_data(&mut report, d, &layout);
        report.postgres_layout = Some(layout);
    }

    // The subnet.
    let network = d.podman_network();
    match overlaps {
        Ok(overlaps) => {
            let others: Vec<String> = overlaps
                .iter()
                .filter(|o| o.network != network)
                .map(|o| format!("{} ({})", o.network, o.subnet))
                .collect();
            if others.is_empty() {
                report.ok(
                    "subnet",
                    format!("{} is free or already {network}", d.subnet),
                );
            } else {
                report.error(
                    "subnet",
                    format!(
                        "the subnet {} overlaps the network(s) {}",
                        d.subnet,
                        others.join(", ")
                    ),
                    "choose a free subnet in [network] subnet (and its gateway)",
                );
            }
        }
        Err(e) => report.error(
            "subnet",
            format!("cannot list the Podman networks: {e}"),
            "check that the Podman service answers",
        ),
    }

    // Secrets: look-alike names.
    match secrets {
        Ok(existing) => {
            for name in d.secret_names() {
                let similar = homelab_secrets::near_duplicates_of(name, &existing);
                if !similar.is_empty() {
                    report.warn(
                        "secrets",
                        format!("the secret {name} has look-alikes: {}", similar.join(", ")),
                        "remove the look-alikes you no longer use (`podman secret rm NAME`) so nobody picks the wrong one",
                    );
                }
            }
        }
        Err(e) => report.error(
            "secrets",
            format!("cannot list the Podman secrets: {e}"),
            "check that the Podman service answers",
        ),
    }

    // Memory overcommit, as Valkey asks for background saves.
    if let Ok(value) = std::fs::read_to_string("/proc/sys/vm/overcommit_memory")
        && value.trim() != "1"
    {
        report.warn(
            "overcommit",
            format!(
                "vm.overcommit_memory is {}: Valkey's background saves may fail under memory pressure",
                value.trim()
            ),
            "sysctl vm.overcommit_memory=1 (and add it to /etc/sysctl.d to keep it)",
        );
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn one_failed_precondition_is_the_error_itself() {
        let mut report = HostReport::default();
        report.ok("podman", "podman 5.4.2");
        report.error("pool", "the pool /p does not exist", "mount it");
        report.warn("linger", "lingering is off", "loginctl enable-linger");
        let failure = report.into_result().unwrap_err();
        assert_eq!(failure.kind, ErrorKind::Precondition);
        assert_eq!(
            failure.to_string(),
            "error: a host precondition is not met: the pool /p does not exist\n  --> pool\n  help: mount it; nothing was changed"
        );
        assert!(failure.problems.is_empty());
    }

    #[test]
    fn several_failed_preconditions_are_listed_each_with_its_place_and_fix() {
        let mut report = HostReport::default();
        report.error("pool", "the pool /p does not exist", "mount it");
        report.ok("quadlet", "Quadlet generator found");
        report.error("images", "the image a is not present", "pull a");
        report.error("images", "the image b is not present", "pull b");
        let failure = report.into_result().unwrap_err();
        assert_eq!(failure.kind, ErrorKind::Precondition);
        assert_eq!(failure.what, "3 host preconditions are not met");
        assert_eq!(failure.location, None);
        let listed: Vec<(&str, Option<&str>, Option<&str>)> = failure
            .problems
            .iter()
            .map(|p| (p.what.as_str(), p.location.as_deref(), p.help.as_deref()))
            .collect();
        assert_eq!(
            listed,
            [
                ("the pool /p does not exist", Some("pool"), Some("mount it")),
                ("the image a is not present", Some("images"), Some("pull a")),
                ("the image b is not present", Some("images"), Some("pull b")),
            ]
        );
        let text = failure.to_string();
        assert!(
            text.contains("  - the image b is not present\n    --> images\n    help: pull b\n"),
            "{text}"
        );
        assert!(
            text.ends_with("help: fix each of them; nothing was changed"),
            "{text}"
        );
    }

    #[test]
    fn no_failed_precondition_is_ok() {
        let mut report = HostReport::default();
        report.ok("podman", "podman 5.4.2");
        report.warn("linger", "lingering is off", "loginctl enable-linger");
        assert!(report.into_result().is_ok());
    }
}
