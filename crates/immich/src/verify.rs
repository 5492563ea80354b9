//! The operator's checklist as checks: network, units, health, storage
//! attributes, secrets, a PostgreSQL login over TCP and Valkey's password.

use std::fmt::Write as _;

use homelab_podman::HealthStatus;
use homelab_secrets::{Policy, SecretValue};
use serde::Serialize;

use crate::desired::{self, Cow};
use crate::direct;
use crate::exec_secret;
use crate::layer::Layer;

/// How much a failed check matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Severity {
    /// The deployment does not work as configured.
    Error,
    /// It works, but something should be looked at.
    Warning,
}

/// One check and its result.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Check {
    /// What was checked (`network`, `postgres login`).
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// How much a failure matters.
    pub severity: Severity,
    /// What was found.
    pub detail: String,
}

/// The operator's checklist, checked: network, units, health, storage
/// attributes, secrets, a PostgreSQL login and Valkey's password.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Verification {
    /// Whether every check of error severity passed.
    pub ok: bool,
    /// Every check.
    pub checks: Vec<Check>,
}

impl std::fmt::Display for Verification {
    /// A line per check, then whether all passed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = String::new();
        for check in &self.checks {
            let mark = match (check.ok, check.severity) {
                (true, _) => "ok  ",
                (false, Severity::Warning) => "warn",
                (false, Severity::Error) => "FAIL",
            };
            let _ = writeln!(out, "{mark} {}: {}", check.name, check.detail);
        }
        out.push_str(if self.ok {
            "verify: all checks passed"
        } else {
            "verify: some checks failed"
        });
        f.write_str(&out)
    }
}

impl crate::Layer {
    /// Checks the deployment against the operator's checklist. A failed check
    /// is in the result (`ok: false`), not an error.
    pub async fn verify(&self) -> Verification {
        verify(self).await
    }
}

/// Checks of one part of the deployment.
#[derive(Debug, Default)]
pub(crate) struct Checks(Vec<Check>);

impl Checks {
    fn add(
        &mut self,
        name: impl Into<String>,
        ok: bool,
        severity: Severity,
        detail: impl Into<String>,
    ) {
        self.0.push(Check {
            name: name.into(),
            ok,
            severity,
            detail: detail.into(),
        });
    }
    fn error(&mut self, name: impl Into<String>, ok: bool, detail: impl Into<String>) {
        self.add(name, ok, Severity::Error, detail);
    }
}

/// The network: subnet, gateway and both containers on it.
async fn network_checks(ctx: &Layer) -> Checks {
    let d = &ctx.deployment;
    let mut c = Checks::default();
    let network = d.podman_network();
    match ctx.runtime.inspect_network(&network).await {
        Ok(info) => {
            let subnet_ok = info.subnets.iter().any(|s| {
                s.subnet.to_string() == d.subnet.to_string() && s.gateway == Some(d.gateway)
            });
            c.error(
                "network",
                subnet_ok,
                if subnet_ok {
                    format!(
                        "{network} has subnet {} and gateway {}",
                        d.subnet, d.gateway
                    )
                } else {
                    let found: Vec<String> = info
                        .subnets
                        .iter()
                        .map(|s| format!("{} via {:?}", s.subnet, s.gateway))
                        .collect();
                    format!(
                        "{network} has {} instead of {} via {}",
                        found.join(", "),
                        d.subnet,
                        d.gateway
                    )
                },
            );
            let members: Vec<&str> = info.containers.values().map(|m| m.name.as_str()).collect();
            for name in [
                &d.config.postgres.container_name,
                &d.config.valkey.container_name,
            ] {
                let on = members.contains(&name.as_str());
                c.error(
                    format!("network member {name}"),
                    on,
                    if on {
                        format!("{name} is on {network}")
                    } else {
                        format!("{name} is not on {network}")
                    },
                );
            }
        }
        Err(e) => c.error("network", false, format!("{network}: {e}")),
    }
    c
}

/// The container's health check, run now.
async fn health_check(ctx: &Layer, name: &str) -> Checks {
    match ctx.runtime.run_health_check(name).await {
        Ok(h) => health_result(name, &h.status),
        Err(e) => {
            let mut c = Checks::default();
            c.error(format!("health {name}"), false, format!("{name}: {e}"));
            c
        }
    }
}

/// The result of the container's health check, run a moment ago.
pub(crate) fn health_result(name: &str, status: &HealthStatus) -> Checks {
    let mut c = Checks::default();
    c.error(
        format!("health {name}"),
        *status == HealthStatus::Healthy,
        format!("health check of {name}: {status}"),
    );
    c
}

/// The check of a unit in the state given (as deploy saw it, waiting).
pub(crate) fn unit_result(service: &str, state: &homelab_systemd::ActiveState) -> Checks {
    let mut c = Checks::default();
    c.error(
        format!("unit {service}"),
        *state == homelab_systemd::ActiveState::Active,
        format!("{service} is {state}"),
    );
    c
}

/// The unit is active.
pub(crate) async fn unit_check(ctx: &Layer, service: &str) -> Checks {
    match ctx.systemd.unit(service).await {
        Ok(state) => unit_result(service, &state.active),
        Err(e) => {
            let mut c = Checks::default();
            c.error(format!("unit {service}"), false, e.to_string());
            c
        }
    }
}

/// NOCOW with no copy-on-write files inside for the databases; copy-on-write for
/// the rest.
fn storage_checks(ctx: &Layer) -> Checks {
    let mut c = Checks::default();
    for dir in desired::dirs(&ctx.deployment) {
        let name = format!("storage {}", dir.key);
        let path = dir.path.display().to_string();
        // Off BTRFS (a pool the operator deployed on with --allow-non-btrfs)
        // there is no NOCOW to check: a warning, as the deploy gave.
        if let Ok(fs) = homelab_btrfs::filesystem(&dir.path)
            && !fs.is_btrfs()
        {
            c.add(
                name,
                dir.cow == Cow::On,
                Severity::Warning,
                match dir.cow {
                    Cow::Off => format!(
                        "{path} is on {fs}, not BTRFS: NOCOW has no effect there, the database keeps copy-on-write"
                    ),
                    Cow::On => format!("{path} is on {fs}"),
                },
            );
            continue;
        }
        match dir.cow {
            Cow::Off => match homelab_btrfs::audit(&dir.path) {
                Ok(report) if !report.root_nocow => {
                    c.error(name, false, format!("{path} is copy-on-write, not NOCOW"));
                }
                Ok(report) if !report.cow_files.is_empty() => c.error(
                    name,
                    false,
                    format!(
                        "{path} is NOCOW but {} file(s) inside are copy-on-write ({} bytes)",
                        report.cow_files.len(),
                        report.cow_bytes()
                    ),
                ),
                Ok(_) => c.error(
                    name,
                    true,
                    format!("{path} is NOCOW, with no copy-on-write files inside"),
                ),
                Err(e) => c.error(name, false, format!("{path}: {e}")),
            },
            Cow::On => match homelab_btrfs::attributes(&dir.path) {
                Ok(attrs) => c.error(
                    name,
                    !attrs.is_nocow(),
                    if attrs.is_nocow() {
                        format!("{path} is NOCOW; it should keep copy-on-write")
                    } else {
                        format!("{path} keeps copy-on-write")
                    },
                ),
                Err(e) => c.error(name, false, format!("{path}: {e}")),
            },
        }
    }
    c
}

/// A secret exists and fits its consumer's policy; returns its value.
async fn secret_check(ctx: &Layer, name: &str, policy: Policy) -> (Checks, Option<SecretValue>) {
    let mut c = Checks::default();
    match ctx.secrets.read(name).await {
        Ok(value) => {
            let findings = homelab_secrets::check(&value, &policy);
            if findings.is_empty() {
                c.error(
                    format!("secret {name}"),
                    true,
                    format!("{name} exists and fits {}", policy.consumer),
                );
            } else {
                let list: Vec<String> = findings.iter().map(ToString::to_string).collect();
                c.add(
                    format!("secret {name}"),
                    false,
                    Severity::Warning,
                    format!(
                        "{name}: {}; fix: immich-db secrets rotate {name}",
                        list.join("; ")
                    ),
                );
            }
            let pending = crate::rotate::pending_name(name);
            if ctx.secrets.exists(&pending).await.unwrap_or(false) {
                c.add(
                    format!("rotation {name}"),
                    false,
                    Severity::Warning,
                    format!("an interrupted rotation left {pending}; fix: immich-db secrets rotate {name} (it finishes or undoes it)"),
                );
            }
            (c, Some(value))
        }
        Err(e) => {
            c.error(format!("secret {name}"), false, e.to_string());
            (c, None)
        }
    }
}

/// PostgreSQL: a login over TCP with the stored password, `SELECT version()`, and
/// a vector extension; straight from the host where it reaches the container,
/// else with `psql` in the container (to `127.0.0.1`, as over a network).
async fn postgres_checks(ctx: &Layer, password: Option<&SecretValue>) -> Checks {
    let pg = &ctx.deployment.config.postgres;
    let Some(password) = password else {
        let mut c = Checks::default();
        c.error("postgres login", false, "no password to log in with");
        return c;
    };
    let login = |how: &str, facts: direct::PostgresFacts| {
        let mut c = Checks::default();
        c.error(
            "postgres login",
            true,
            format!(
                "{}@{} over TCP {how} with the stored password: {}",
                pg.user, pg.database, facts.version
            ),
        );
        c.extend(checksum_check(facts.checksums.as_ref()));
        let extensions = facts.vector_extensions.trim();
        c.add(
            "postgres vector extension",
            !extensions.is_empty(),
            Severity::Warning,
            if extensions.is_empty() {
                "no vector extension (vector, vchord or vectors) is available: Immich's search needs one".to_owned()
            } else {
                format!("available: {extensions}")
            },
        );
        c
    };
    let refused = |how: &str, why: &str| {
        let mut c = Checks::default();
        c.error(
            "postgres login",
            false,
            format!(
                "login as {} to {} over TCP {how} failed: {why}",
                pg.user, pg.database
            ),
        );
        c
    };
    match postgres_login(ctx, password).await {
        Login::Done { how, facts } => login(&how, facts),
        Login::Refused { how, why } => refused(&how, &why),
        Login::Failed(why) => {
            let mut c = Checks::default();
            c.error("postgres login", false, why);
            c
        }
    }
}

/// How a login to PostgreSQL went.
pub(crate) enum Login {
    /// Logged in `how`; the answers.
    Done {
        how: String,
        facts: direct::PostgresFacts,
    },
    /// The server refused (`how`, why).
    Refused { how: String, why: String },
    /// It could not be tried.
    Failed(String),
}

/// Logs in over TCP with `password` and asks [`direct::POSTGRES_QUERY`]:
/// straight from the host where it reaches the container, else with `psql` in
/// the container (to `127.0.0.1`, as over a network).
pub(crate) async fn postgres_login(ctx: &Layer, password: &SecretValue) -> Login {
    let pg = &ctx.deployment.config.postgres;
    if let Some(ip) = direct::address(ctx, &pg.container_name).await {
        let how = format!("from the host to {ip}");
        let at = std::net::SocketAddr::new(ip, direct::POSTGRES_PORT);
        match direct::postgres_login(at, &pg.user, &pg.database, password).await {
            Ok(facts) => return Login::Done { how, facts },
            Err(direct::LoginError::Refused(why)) => return Login::Refused { how, why },
            // No connection: as if the host could not reach it.
            Err(direct::LoginError::Unreachable) => {}
        }
    }
    let spec = exec_secret::psql_over_tcp(&pg.user, &pg.database, direct::POSTGRES_QUERY, password);
    let how = "in the container".to_owned();
    match ctx.runtime.exec(&pg.container_name, &spec).await {
        Ok(out) if out.success() => {
            let text = out.stdout_text();
            Login::Done {
                how,
                facts: direct::PostgresFacts::from_answers(text.lines()),
            }
        }
        Ok(out) => Login::Refused {
            how,
            why: out.stderr_text().trim().to_owned(),
        },
        Err(e) => Login::Failed(e.to_string()),
    }
}

/// PostgreSQL's data checksums: a failure counted in `pg_stat_database` means
/// that PostgreSQL read a page that is not what it wrote (what Immich's own
/// image checks in its health check, which this layer replaces with a faster
/// readiness check).
fn checksum_check(checksums: Option<&crate::status::Checksums>) -> Checks {
    let mut c = Checks::default();
    let name = "postgres data checksums";
    match checksums {
        None => c.add(
            name,
            false,
            Severity::Warning,
            "the server did not say whether data checksums are on",
        ),
        Some(sums) if sums.failures > 0 => c.error(
            name,
            false,
            format!(
                "{} checksum failure(s) counted in pg_stat_database{}: PostgreSQL read pages that are not what it wrote; \
                 stop writing to it, keep a copy of the data directory, and restore the last good backup (immich-db restore)",
                sums.failures,
                sums.last_failure
                    .as_deref()
                    .map(|t| format!(", the last at {t}"))
                    .unwrap_or_default()
            ),
        ),
        Some(sums) if !sums.enabled => c.add(
            name,
            false,
            Severity::Warning,
            "data checksums are off: PostgreSQL cannot detect corrupt pages (initdb_args --data-checksums applies to a new database only)",
        ),
        Some(_) => c.error(name, true, "data checksums are on, with no failures"),
    }
    c
}

/// Valkey: PONG with the password; refused without it.
async fn valkey_checks(ctx: &Layer, password: Option<&SecretValue>) -> Checks {
    let vk = &ctx.deployment.config.valkey;
    let mut c = Checks::default();
    let with_password = if vk.require_password { password } else { None };
    let direct = match direct::address(ctx, &vk.container_name).await {
        // No connection: as if the host could not reach it.
        Some(ip) => valkey_pings_direct(ip, with_password, vk.require_password)
            .await
            .ok(),
        None => None,
    };
    let (with, without) = match direct {
        Some(answers) => answers,
        None => valkey_pings_in_container(ctx, with_password, vk.require_password).await,
    };
    match with {
        Ok(answer) if answer == "PONG" => {
            c.error("valkey ping", true, "PING answers PONG");
        }
        Ok(answer) => c.error("valkey ping", false, format!("PING answered {answer:?}")),
        Err(e) => c.error("valkey ping", false, e),
    }
    match without {
        Some(Ok(answer)) if answer.contains("NOAUTH") => {
            c.error(
                "valkey password",
                true,
                "PING without the password is refused (NOAUTH)",
            );
        }
        Some(Ok(answer)) => c.error(
            "valkey password",
            false,
            format!("PING without the password answered {answer:?}"),
        ),
        Some(Err(e)) => c.error("valkey password", false, e),
        None => {}
    }
    c
}

/// What PING answered: with the password, and (when one is required) without.
type PingAnswers = (Result<String, String>, Option<Result<String, String>>);

/// Both PINGs straight from the host; an error when no connection was made.
async fn valkey_pings_direct(
    ip: std::net::IpAddr,
    password: Option<&SecretValue>,
    required: bool,
) -> std::io::Result<PingAnswers> {
    let at = std::net::SocketAddr::new(ip, direct::VALKEY_PORT);
    let (with, without) = tokio::join!(direct::valkey_ping(at, password), async {
        if required {
            Some(direct::valkey_ping(at, None).await)
        } else {
            None
        }
    });
    Ok((Ok(with?), without.transpose()?.map(Ok)))
}

/// Both PINGs with `valkey-cli` in the container.
async fn valkey_pings_in_container(
    ctx: &Layer,
    password: Option<&SecretValue>,
    required: bool,
) -> PingAnswers {
    let vk = &ctx.deployment.config.valkey;
    let ping = |password: Option<&SecretValue>| {
        let spec = password.map_or_else(
            exec_secret::valkey_ping_without_password,
            exec_secret::valkey_ping,
        );
        let runtime = ctx.runtime.clone();
        let container = vk.container_name.clone();
        async move {
            runtime
                .exec(&container, &spec)
                .await
                .map(|out| {
                    format!("{}{}", out.stdout_text(), out.stderr_text())
                        .trim()
                        .to_owned()
                })
                .map_err(|e| e.to_string())
        }
    };
    tokio::join!(ping(password), async {
        if required {
            Some(ping(None).await)
        } else {
            None
        }
    })
}

impl Checks {
    pub(crate) fn extend(&mut self, other: Checks) {
        self.0.extend(other.0);
    }
}

/// PostgreSQL's checks but its unit's: its health (run now, unless `health`
/// holds a result of a moment ago), its secret and a login.
pub(crate) async fn postgres_service(ctx: &Layer, health: Option<Checks>) -> Checks {
    let pg = &ctx.deployment.config.postgres;
    let (health, (mut c, password)) = tokio::join!(
        async {
            match health {
                Some(h) => h,
                None => health_check(ctx, &pg.container_name).await,
            }
        },
        secret_check(ctx, &pg.password_secret, Policy::postgres_password()),
    );
    c.extend(postgres_checks(ctx, password.as_ref()).await);
    let mut all = health;
    all.extend(c);
    all
}

/// Valkey's checks but its unit's: its health (run now, unless `health` holds
/// a result of a moment ago), its secret, PING with and without the password.
pub(crate) async fn valkey_service(ctx: &Layer, health: Option<Checks>) -> Checks {
    let vk = &ctx.deployment.config.valkey;
    let (health, (mut c, password)) = tokio::join!(
        async {
            match health {
                Some(h) => h,
                None => health_check(ctx, &vk.container_name).await,
            }
        },
        async {
            if vk.require_password {
                secret_check(ctx, &vk.password_secret, Policy::valkey_password()).await
            } else {
                (Checks::default(), None)
            }
        }
    );
    c.extend(valkey_checks(ctx, password.as_ref()).await);
    let mut all = health;
    all.extend(c);
    all
}

/// PostgreSQL's checks: its unit, its health, its secret and a login.
async fn postgres_part(ctx: &Layer) -> Checks {
    let pg = &ctx.deployment.config.postgres;
    let mut c = unit_check(ctx, &format!("{}.service", pg.container_name)).await;
    c.extend(postgres_service(ctx, None).await);
    c
}

/// Valkey's checks: its unit, its health, its secret, PING with and without
/// the password.
async fn valkey_part(ctx: &Layer) -> Checks {
    let vk = &ctx.deployment.config.valkey;
    let mut c = unit_check(ctx, &format!("{}.service", vk.container_name)).await;
    c.extend(valkey_service(ctx, None).await);
    c
}

/// What both services share: the network with both on it, the storage, the
/// token-signing key.
pub(crate) async fn common_part(ctx: &Layer) -> Checks {
    let d = &ctx.deployment;
    let (mut c, (jwt, _)) = tokio::join!(
        network_checks(ctx),
        secret_check(ctx, &d.config.immich.jwt_secret, Policy::signing_key()),
    );
    c.extend(storage_checks(ctx));
    c.extend(jwt);
    c.extend(container_checks(ctx).await);
    c
}

/// Per database container: whether it runs the newest local copy of its
/// configured image, whether its server runs as root on the host, and whether
/// its published port answers.
async fn container_checks(ctx: &Layer) -> Checks {
    let cfg = &ctx.deployment.config;
    let containers = &ctx.deployment.containers;
    let mut all = Checks::default();
    for (service, container, image, publish) in [
        (
            "postgres",
            &cfg.postgres.container_name,
            &cfg.postgres.image,
            containers.postgres.publish,
        ),
        (
            "valkey",
            &cfg.valkey.container_name,
            &cfg.valkey.image,
            containers.valkey.publish,
        ),
    ] {
        // A container that does not run is the unit check's to report.
        let Ok(info) = ctx.runtime.inspect_container(container).await else {
            continue;
        };
        all.extend(image_check(ctx, service, &info, image).await);
        all.extend(user_check(&info));
        if let Some(at) = publish {
            all.extend(published_check(container, at).await);
        }
    }
    all
}

/// The first 12 digits of an image ID, as podman shows it.
fn short_id(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    id.get(..12).unwrap_or(id)
}

/// Whether a container runs the image its configured name now names in local
/// storage: a newer copy pulled or built under that name is used only once the
/// container is created again (`immich-db update`).
async fn image_check(
    ctx: &Layer,
    service: &str,
    info: &homelab_podman::ContainerInfo,
    image: &str,
) -> Checks {
    let mut c = Checks::default();
    let name = format!("image {}", info.name);
    if info.image_id.is_empty() {
        return c;
    }
    let newest = match ctx.runtime.inspect_image(image).await {
        Ok(newest) => newest,
        Err(e) if e.is_not_found() => {
            c.add(
                name,
                false,
                Severity::Warning,
                format!("{image} is not in local storage (it was removed after the container started); the next start pulls it"),
            );
            return c;
        }
        Err(e) => {
            c.add(name, false, Severity::Warning, format!("{image}: {e}"));
            return c;
        }
    };
    let running = short_id(&info.image_id);
    if newest.id == info.image_id {
        c.add(
            name,
            true,
            Severity::Warning,
            format!("runs {image} ({running}), its newest local copy"),
        );
        return c;
    }
    let created = |t: Option<std::time::SystemTime>| {
        t.map(|t| {
            chrono::DateTime::<chrono::Utc>::from(t)
                .format("%Y-%m-%d %H:%M UTC")
                .to_string()
        })
    };
    let running_created = ctx
        .runtime
        .inspect_image(&info.image_id)
        .await
        .ok()
        .and_then(|i| i.created);
    let how = match (running_created, newest.created) {
        (Some(old), Some(new)) if old < new => "older than",
        _ => "not",
    };
    c.add(
        name,
        false,
        Severity::Warning,
        format!(
            "runs image {running}{}, {how} the newest local copy of {image} ({}{}); fix: immich-db update --service {service}",
            created(running_created).map(|t| format!(" of {t}")).unwrap_or_default(),
            short_id(&newest.id),
            created(newest.created).map(|t| format!(" of {t}")).unwrap_or_default(),
        ),
    );
    c
}

/// The real user ID of a process, from `/proc/PID/status`.
fn process_uid(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The server (the container's first process) does not run as root on the
/// host: the images' entrypoints drop root for their own users, and rootless
/// podman runs them as the deploying user.
fn user_check(info: &homelab_podman::ContainerInfo) -> Checks {
    let mut c = Checks::default();
    let Some(uid) = info.state.pid.and_then(process_uid) else {
        return c;
    };
    let name = format!("user {}", info.name);
    if uid == 0 {
        c.add(
            name,
            false,
            Severity::Warning,
            format!("the server in {} runs as root on the host: its image's entrypoint did not drop root", info.name),
        );
    } else {
        c.add(
            name,
            true,
            Severity::Warning,
            format!(
                "the server in {} runs as host UID {uid}, not root",
                info.name
            ),
        );
    }
    c
}

/// A port published for clients on the host accepts a connection.
async fn published_check(container: &str, at: std::net::SocketAddr) -> Checks {
    let mut c = Checks::default();
    let name = format!("published {container}");
    let connect = tokio::net::TcpStream::connect(at);
    match tokio::time::timeout(std::time::Duration::from_secs(2), connect).await {
        Ok(Ok(_)) => c.error(name, true, format!("{at} on the host accepts connections")),
        Ok(Err(e)) => c.error(name, false, format!("{at} on the host: {e}")),
        Err(_) => c.error(
            name,
            false,
            format!("{at} on the host: no answer within 2 s"),
        ),
    }
    c
}

/// The verification from its parts.
pub(crate) fn assemble(common: Checks, postgres: Checks, valkey: Checks) -> Verification {
    let checks: Vec<Check> = [common, postgres, valkey]
        .into_iter()
        .flat_map(|c| c.0)
        .collect();
    let ok = checks
        .iter()
        .all(|ch| ch.ok || ch.severity == Severity::Warning);
    Verification { ok, checks }
}

/// Runs every check, independent ones at the same time; never fails itself (a
/// check that cannot run fails).
pub(crate) async fn verify(ctx: &Layer) -> Verification {
    let (common, postgres, valkey) =
        tokio::join!(common_part(ctx), postgres_part(ctx), valkey_part(ctx));
    assemble(common, postgres, valkey)
}
