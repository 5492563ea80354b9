//! The operator's checklist as checks: network, units, health, storage
//! attributes, secrets, a PostgreSQL login over TCP and Valkey's password.

use homelab_podman::{ExecSpec, HealthStatus};
use homelab_secrets::{Policy, SecretValue};
use serde::Serialize;

use crate::context::Context;
use crate::desired::{self, Cow};

/// How much a failed check matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Severity {
    /// The deployment does not work as configured.
    Error,
    /// It works, but something should be looked at.
    Warning,
}

/// One check and its result.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Check {
    pub(crate) name: String,
    pub(crate) ok: bool,
    pub(crate) severity: Severity,
    pub(crate) detail: String,
}

/// All checks.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Verification {
    pub(crate) ok: bool,
    pub(crate) checks: Vec<Check>,
}

impl Verification {
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        for check in &self.checks {
            let mark = match (check.ok, check.severity) {
                (true, _) => "ok  ",
                (false, Severity::Warning) => "warn",
                (false, Severity::Error) => "FAIL",
            };
            out.push_str(&format!("{mark} {}: {}\n", check.name, check.detail));
        }
        out.push_str(if self.ok {
            "verify: all checks passed"
        } else {
            "verify: some checks failed"
        });
        out
    }
}

#[derive(Default)]
struct Checks(Vec<Check>);

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

/// A secret's bytes as text for an environment variable of an exec; `None` when
/// they are not UTF-8 (then no login can be tried with them).
fn as_env(value: &SecretValue) -> Option<String> {
    String::from_utf8(value.expose().to_vec()).ok()
}

/// Runs every check; never fails itself (a check that cannot run fails).
pub(crate) async fn verify(ctx: &Context) -> Verification {
    let d = &ctx.deployment;
    let mut c = Checks::default();
    let pg = &d.config.postgres;
    let vk = &d.config.valkey;

    // Network.
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
            for name in [&pg.container_name, &vk.container_name] {
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

    // Units and health.
    for unit in desired::units(d).iter().skip(1) {
        match ctx
            .systemd
            .show(&unit.service, &["ActiveState", "SubState"])
        {
            Ok(props) => {
                let state = props.get("ActiveState").cloned().unwrap_or_default();
                c.error(
                    format!("unit {}", unit.service),
                    state == "active",
                    format!("{} is {state}", unit.service),
                );
            }
            Err(e) => c.error(format!("unit {}", unit.service), false, e.to_string()),
        }
    }
    for name in [&pg.container_name, &vk.container_name] {
        match ctx.runtime.run_health_check(name).await {
            Ok(h) => c.error(
                format!("health {name}"),
                h.status == HealthStatus::Healthy,
                format!("health check of {name}: {}", h.status),
            ),
            Err(e) => c.error(format!("health {name}"), false, format!("{name}: {e}")),
        }
    }

    // Storage.
    for dir in desired::dirs(d) {
        let name = format!("storage {}", dir.key);
        let path = dir.path.display().to_string();
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

    // Secrets.
    let mut pg_password = None;
    let mut vk_password = None;
    let policies = [
        (pg.password_secret.as_str(), Policy::postgres_password()),
        (vk.password_secret.as_str(), Policy::valkey_password()),
        (d.config.immich.jwt_secret.as_str(), Policy::signing_key()),
    ];
    for (name, policy) in policies {
        if name == vk.password_secret && !vk.require_password {
            continue;
        }
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
                if name == pg.password_secret {
                    pg_password = Some(value);
                } else if name == vk.password_secret {
                    vk_password = Some(value);
                }
            }
            Err(e) => c.error(format!("secret {name}"), false, e.to_string()),
        }
    }

    // PostgreSQL: a login over TCP with the stored password.
    match pg_password.as_ref().and_then(as_env) {
        Some(password) => {
            let login = ExecSpec::new([
                "psql",
                "-h",
                "127.0.0.1",
                "-U",
                pg.user.as_str(),
                "-d",
                pg.database.as_str(),
                "-w",
                "-Atc",
                "SELECT version(); SELECT string_agg(name, ',') FROM pg_available_extensions WHERE name IN ('vector', 'vchord', 'vectors')",
            ])
            .env("PGPASSWORD", password);
            match ctx.runtime.exec(&pg.container_name, &login).await {
                Ok(out) if out.success() => {
                    let text = out.stdout_text();
                    let mut lines = text.lines();
                    let version = lines.next().unwrap_or_default().to_owned();
                    let extensions = lines.next().unwrap_or_default().trim().to_owned();
                    c.error(
                        "postgres login",
                        true,
                        format!(
                            "{}@{} over TCP with the stored password: {version}",
                            pg.user, pg.database
                        ),
                    );
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
                }
                Ok(out) => c.error(
                    "postgres login",
                    false,
                    format!(
                        "login as {} to {} over TCP failed: {}",
                        pg.user,
                        pg.database,
                        out.stderr_text().trim()
                    ),
                ),
                Err(e) => c.error("postgres login", false, e.to_string()),
            }
        }
        None => c.error("postgres login", false, "no usable password in the secret"),
    }

    // Valkey: PONG with the password, refused without.
    let ping = |password: Option<String>| {
        let spec = match password {
            Some(p) => ExecSpec::new(["valkey-cli", "ping"]).env("REDISCLI_AUTH", p),
            None => ExecSpec::new(["env", "-u", "REDISCLI_AUTH", "valkey-cli", "ping"]),
        };
        let runtime = ctx.runtime.clone();
        let container = vk.container_name.clone();
        async move { runtime.exec(&container, &spec).await }
    };
    let with_password = if vk.require_password {
        vk_password.as_ref().and_then(as_env)
    } else {
        None
    };
    match ping(with_password).await {
        Ok(out) if out.stdout_text().trim() == "PONG" => {
            c.error("valkey ping", true, "PING answers PONG")
        }
        Ok(out) => c.error(
            "valkey ping",
            false,
            format!(
                "PING answered {:?}",
                format!("{}{}", out.stdout_text(), out.stderr_text()).trim()
            ),
        ),
        Err(e) => c.error("valkey ping", false, e.to_string()),
    }
    if vk.require_password {
        match ping(None).await {
            Ok(out)
                if out.stdout_text().contains("NOAUTH") || out.stderr_text().contains("NOAUTH") =>
            {
                c.error(
                    "valkey password",
                    true,
                    "PING without the password is refused (NOAUTH)",
                );
            }
            Ok(out) => c.error(
                "valkey password",
                false,
                format!(
                    "PING without the password answered {:?}",
                    out.stdout_text().trim()
                ),
            ),
            Err(e) => c.error("valkey password", false, e.to_string()),
        }
    }

    let ok =
        c.0.iter()
            .all(|ch| ch.ok || ch.severity == Severity::Warning);
    Verification { ok, checks: c.0 }
}
