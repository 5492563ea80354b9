//! Replacing a deployment's secret and telling its consumer, so that the
//! database and the secret store never disagree for good.
//!
//! A rotation first stores the new value as a pending secret `<name>.rotating`
//! (the journal), then changes the consumer (PostgreSQL's role password, or
//! Valkey by restarting it with the new secret), then replaces the secret, then
//! removes the journal. Interrupted anywhere, the next `secrets rotate` finds the
//! journal and asks the consumer which password it accepts: the new one, and the
//! rotation is finished; the old one, and it is undone. Passwords travel only on
//! the standard input of commands in the container; PostgreSQL receives a
//! SCRAM-SHA-256 verifier computed here, never the password itself.
//!
//! In debug builds the fault hook (`IMMICH_DB_FAULT_AT`) can stop a rotation
//! after each step: `rotate-pending` (journal written), `rotate-consumer`
//! (PostgreSQL altered, or Valkey restarted), `rotate-replaced` (secret
//! replaced) and `rotate-cleared` (journal removed).

use homelab_secrets::{Policy, SecretValue, StoreError};
use serde::Serialize;

use crate::backup;
use crate::error::{Error, Result};
use crate::exec_secret;
use crate::fault;
use crate::layer::Layer;
use crate::progress::Event;
use homelab_systemd::{JobWatch, Wait, WaitFor};
use std::time::Duration;

/// Why a rotation needs the consumer's container running.
const ROTATION_NEEDS: &str = "a rotation changes and checks the password in it";

/// The suffix of the journal secret that holds a rotation's new value.
pub(crate) const PENDING_SUFFIX: &str = ".rotating";

/// The journal secret of a rotation of `name`.
pub(crate) fn pending_name(name: &str) -> String {
    format!("{name}{PENDING_SUFFIX}")
}

/// Which of the deployment's secrets, and who uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Kind {
    /// `[postgres] password_secret`: the role's password.
    PostgresPassword,
    /// `[valkey] password_secret`: Valkey's `requirepass`.
    ValkeyPassword,
    /// `[immich] jwt_secret`: a JWT key Immich no longer reads.
    JwtSecret,
}

impl Kind {
    /// The policy its values must meet.
    pub fn policy(self) -> Policy {
        match self {
            Self::PostgresPassword => Policy::postgres_password(),
            Self::ValkeyPassword => Policy::valkey_password(),
            Self::JwtSecret => Policy::signing_key(),
        }
    }

    /// What it is, for a person.
    pub fn describe(self) -> &'static str {
        match self {
            Self::PostgresPassword => "PostgreSQL password",
            Self::ValkeyPassword => "Valkey password",
            Self::JwtSecret => "JWT key (unused by Immich)",
        }
    }

    /// What a value of this secret is called in messages.
    fn noun(self) -> &'static str {
        match self {
            Self::PostgresPassword | Self::ValkeyPassword => "password",
            Self::JwtSecret => "key",
        }
    }

    /// A new value, by the secret's policy.
    fn generate(self) -> Result<SecretValue> {
        self.policy()
            .generator
            .generate()
            .map_err(|e| Error::failed(format!("cannot generate a {}: {e}", self.noun())))
    }

    /// What a user should know of it beyond its policy: Immich no longer
    /// reads the JWT secret.
    pub fn note(self) -> Option<&'static str> {
        match self {
            Self::PostgresPassword | Self::ValkeyPassword => None,
            Self::JwtSecret => Some(
                "not used by Immich: it stopped reading JWT_SECRET in early 2023; kept for deployments that still pass it",
            ),
        }
    }

    /// The configuration key that names the secret.
    pub fn key(self) -> &'static str {
        match self {
            Self::PostgresPassword => "[postgres] password_secret",
            Self::ValkeyPassword => "[valkey] password_secret",
            Self::JwtSecret => "[immich] jwt_secret",
        }
    }
}

/// The deployment's secrets with what each is for.
pub(crate) fn deployment_secrets(ctx: &Layer) -> Vec<(String, Kind)> {
    let c = &ctx.deployment.config;
    let mut secrets = vec![(c.postgres.password_secret.clone(), Kind::PostgresPassword)];
    if c.valkey.require_password {
        secrets.push((c.valkey.password_secret.clone(), Kind::ValkeyPassword));
    }
    secrets.push((c.immich.jwt_secret.clone(), Kind::JwtSecret));
    secrets
}

/// The kind of a secret of this deployment, or a bad-input failure that lists
/// the names it has.
pub(crate) fn kind_of(ctx: &Layer, name: &str) -> Result<Kind> {
    let secrets = deployment_secrets(ctx);
    if let Some((_, kind)) = secrets.iter().find(|(n, _)| n == name) {
        return Ok(*kind);
    }
    let c = &ctx.deployment.config;
    let help = if name == c.valkey.password_secret && !c.valkey.require_password {
        "Valkey runs without a password in this configuration ([valkey] require_password = false)"
            .to_owned()
    } else {
        let names: Vec<&str> = secrets.iter().map(|(n, _)| n.as_str()).collect();
        format!("this deployment's secrets are: {}", names.join(", "))
    };
    Err(Error::bad_input(format!("{name:?} is not a secret of this deployment")).help(help))
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Action {
    /// A new value is in place.
    Rotated,
    /// An interrupted rotation was finished: the new value it had chosen is in
    /// place.
    FinishedInterrupted,
}

/// What a rotation did.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct RotateReport {
    /// The secret.
    pub secret: String,
    /// What it is for.
    pub kind: Kind,
    /// Whether it was rotated now or an interrupted rotation was finished.
    pub action: Action,
    /// What was done, in order.
    pub steps: Vec<String>,
    /// What the user must do next.
    pub warnings: Vec<String>,
}

/// One rotation in progress: the secret, its journal, and the steps taken.
struct Rotation<'a> {
    ctx: &'a Layer,
    kind: Kind,
    /// The secret.
    name: &'a str,
    /// Its journal secret, which holds the new value while the rotation runs.
    pending: String,
    steps: Vec<String>,
}

impl Rotation<'_> {
    fn done(&mut self, what: impl Into<String>) {
        let what = what.into();
        self.ctx.tell(Event::Done(&what));
        self.steps.push(what);
    }

    /// The secret's value now.
    async fn current(&self) -> Result<SecretValue> {
        let name = self.name;
        self.ctx.secrets.read(name).await.map_err(|e| match e {
            StoreError::NotFound { .. } => {
                Error::precondition(format!("the secret {name} does not exist"))
                    .help("deploy first (`immich-db deploy` creates the secrets), then rotate")
            }
            other => store_failure(&format!("read the secret {name}"), &other),
        })
    }

    /// The new value of an interrupted rotation, when there is one.
    async fn interrupted(&self) -> Result<Option<SecretValue>> {
        match self.ctx.secrets.read(&self.pending).await {
            Ok(value) => Ok(Some(value)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_failure(
                &format!("read the secret {}", self.pending),
                &e,
            )),
        }
    }

    /// Generates the new value and stores it in the journal, before anything
    /// else changes.
    async fn begin(&mut self) -> Result<SecretValue> {
        let new = self.kind.generate()?;
        self.ctx
            .secrets
            .create(&self.pending, &new)
            .await
            .map_err(|e| {
                store_failure(&format!("create the journal secret {}", self.pending), &e)
            })?;
        self.done(format!(
            "stored the new {} in the journal secret {}",
            self.kind.noun(),
            self.pending
        ));
        fault::point("rotate-pending");
        Ok(new)
    }

    /// Replaces the secret with the new value.
    async fn replace(&mut self, new: &SecretValue) -> Result<()> {
        replace(self.ctx, self.name, new).await?;
        self.done(format!("replaced the secret {}", self.name));
        fault::point("rotate-replaced");
        Ok(())
    }

    /// Stores an interrupted rotation's value in the secret, unless it is
    /// there already; `step` says so.
    async fn adopt(
        &mut self,
        current: &SecretValue,
        pending: &SecretValue,
        step: String,
    ) -> Result<()> {
        if current != pending {
            replace(self.ctx, self.name, pending).await?;
            self.done(step);
        }
        Ok(())
    }

    /// Removes the journal: the rotation is over.
    async fn finish(&mut self) -> Result<()> {
        remove_pending(self.ctx, &self.pending).await?;
        self.done(format!("removed the journal secret {}", self.pending));
        Ok(())
    }

    /// Removes the journal of an interrupted rotation that never reached the
    /// consumer, which still has the secret's value.
    async fn undo(&mut self, consumer: &str) -> Result<()> {
        remove_pending(self.ctx, &self.pending).await?;
        self.done(format!(
            "undid an interrupted rotation: {consumer} still had the password in {}; removed {}",
            self.name, self.pending
        ));
        Ok(())
    }
}

fn store_failure(doing: &str, e: &StoreError) -> Error {
    Error::failed(format!("cannot {doing}: {e}"))
}

/// Whether PostgreSQL accepts `password` for the role, logging in over TCP as
/// Immich does. The password reaches `psql` on its standard input, through the
/// shell's `read`, so it is in no process's arguments and in no file.
pub(crate) async fn postgres_accepts(ctx: &Layer, password: &SecretValue) -> Result<bool> {
    postgres_accepts_in(
        ctx,
        &ctx.deployment.config.postgres.container_name,
        password,
    )
    .await
}

/// [`postgres_accepts`], of the server in `container` (one started on the
/// deployment's data for a moment, say).
pub(crate) async fn postgres_accepts_in(
    ctx: &Layer,
    container: &str,
    password: &SecretValue,
) -> Result<bool> {
    let pg = &ctx.deployment.config.postgres;
    let spec = exec_secret::psql_over_tcp(&pg.user, &pg.database, "SELECT 1", password);
    let out = ctx
        .runtime
        .exec(container, &spec)
        .await
        .map_err(|e| ctx.podman_failure("trying a PostgreSQL login", &e))?;
    if out.success() {
        return Ok(true);
    }
    let stderr = out.stderr_text();
    if stderr.contains("password authentication failed") {
        return Ok(false);
    }
    Err(Error::failed(format!(
        "cannot try a login to PostgreSQL in {container}: {}",
        stderr.trim()
    ))
    .help("check that PostgreSQL is running and healthy: `immich-db status`"))
}

/// Whether Valkey answers PING with `password`; the password reaches
/// `valkey-cli` on standard input, as for PostgreSQL.
pub(crate) async fn valkey_accepts(ctx: &Layer, password: &SecretValue) -> Result<bool> {
    let vk = &ctx.deployment.config.valkey;
    let spec = exec_secret::valkey_ping(password);
    let out = ctx
        .runtime
        .exec(&vk.container_name, &spec)
        .await
        .map_err(|e| ctx.podman_failure("trying Valkey's password", &e))?;
    let text = format!("{}{}", out.stdout_text(), out.stderr_text());
    if out.stdout_text().trim() == "PONG" {
        return Ok(true);
    }
    if ["WRONGPASS", "NOAUTH", "AUTH failed", "invalid password"]
        .iter()
        .any(|m| text.contains(m))
    {
        return Ok(false);
    }
    Err(Error::failed(format!(
        "cannot try Valkey's password in {}: {}",
        vk.container_name,
        text.trim()
    ))
    .help("check that Valkey is running and healthy: `immich-db status`"))
}

/// Sets the role's password in PostgreSQL to `new`, sending only its SCRAM
/// verifier, on `psql`'s standard input over the container's local socket.
pub(crate) async fn set_postgres_password(ctx: &Layer, new: &SecretValue) -> Result<()> {
    let pg = &ctx.deployment.config.postgres;
    // The SCRAM-SHA-256 verifier PostgreSQL would store, computed here: the
    // cleartext reaches neither the statement nor the server's logs.
    let verifier = postgres_protocol::password::scram_sha_256(new.expose());
    // The role name passed the configuration's identifier check: no quoting
    // issues.
    let sql = format!("ALTER ROLE \"{}\" PASSWORD '{verifier}';", pg.user);
    backup::psql(ctx, "changing the role's password", &sql)
        .await
        .map(drop)
}

async fn remove_pending(ctx: &Layer, pending: &str) -> Result<()> {
    match ctx.secrets.remove(pending).await {
        Ok(()) | Err(StoreError::NotFound { .. }) => Ok(()),
        Err(e) => Err(store_failure(&format!("remove the secret {pending}"), &e)),
    }
}

async fn replace(ctx: &Layer, name: &str, value: &SecretValue) -> Result<()> {
    homelab_secrets::rotate(ctx.secrets.as_ref(), name, value)
        .await
        .map(drop)
        .map_err(|e| Error::failed(format!("cannot replace the secret {name}: {e}")))
}

/// Restarts `service` and returns once it runs again (with `Notify=healthy`:
/// once its container is healthy).
///
/// A restart job that fails is not yet a failed restart: with `Restart=always`
/// systemd starts the service again by itself, and once it has given up, one
/// more start is tried here.
pub(crate) async fn restart(ctx: &Layer, service: &str) -> Result<()> {
    let units = [service.to_owned()];
    let Err(first) = ctx.systemd.restart(&units, Wait::Done).await else {
        return Ok(());
    };
    let again_by_itself = WaitFor::new(service, Duration::from_secs(30))
        .every(Duration::from_millis(200))
        .wait(ctx.systemd.as_ref(), &mut JobWatch::none())
        .await;
    if again_by_itself.is_ok() {
        return Ok(());
    }
    let _ = ctx.systemd.reset_failed(&units).await;
    ctx.systemd
        .start(&units, Wait::Done)
        .await
        .map_err(|again| {
            Error::failed(format!(
                "cannot restart {service}: {first}; and started once more: {again}"
            ))
            .help(format!(
                "see `journalctl{} -u {service}`",
                ctx.systemd.scope().flag()
            ))
        })
}

/// Rotates the secret `name` of the deployment: finishes or undoes an
/// interrupted rotation first.
pub(crate) async fn rotate(ctx: &Layer, name: &str) -> Result<RotateReport> {
    let kind = kind_of(ctx, name)?;
    let mut rotation = Rotation {
        ctx,
        kind,
        name,
        pending: pending_name(name),
        steps: Vec::new(),
    };
    let action = match kind {
        Kind::PostgresPassword => rotate_postgres(&mut rotation).await?,
        Kind::ValkeyPassword => rotate_valkey(&mut rotation).await?,
        Kind::JwtSecret => rotate_jwt(&mut rotation).await?,
    };
    let warning = match kind {
        Kind::PostgresPassword | Kind::ValkeyPassword => format!(
            "restart the Immich server (and anything else that uses {name}) so that it reads the new password"
        ),
        Kind::JwtSecret => format!(
            "{name} has a new value; Immich does not read it (JWT_SECRET has been unused since early 2023), so nothing else changes"
        ),
    };
    Ok(RotateReport {
        secret: name.to_owned(),
        kind,
        action,
        steps: rotation.steps,
        warnings: vec![warning],
    })
}

async fn rotate_postgres(r: &mut Rotation<'_>) -> Result<Action> {
    let ctx = r.ctx;
    let name = r.name;
    let pending_name = r.pending.clone();
    let pg = &ctx.deployment.config.postgres;
    let service = format!("{}.service", pg.container_name);
    backup::require_running(ctx, &pg.container_name, ROTATION_NEEDS).await?;
    let current = r.current().await?;

    if let Some(pending) = r.interrupted().await? {
        if postgres_accepts(ctx, &pending).await? {
            r.adopt(
                &current,
                &pending,
                format!("PostgreSQL already had the new password of an interrupted rotation: stored it in {name}"),
            )
            .await?;
            r.finish().await?;
            restart(ctx, &service).await?;
            r.done(format!("restarted {service}"));
            check_postgres_switched(ctx, &pending, None).await?;
            r.done("PostgreSQL accepts the stored password");
            return Ok(Action::FinishedInterrupted);
        }
        if !postgres_accepts(ctx, &current).await? {
            return Err(Error::failed(format!(
                "PostgreSQL accepts neither the password in {name} nor the one in {pending_name} (an interrupted rotation): nothing was changed"
            ))
            .help(format!(
                "find the role's password (a backup of the secrets), set it with ALTER ROLE, store it in {name}, then remove {pending_name}"
            )));
        }
        r.undo("PostgreSQL").await?;
    } else if !postgres_accepts(ctx, &current).await? {
        return Err(Error::precondition(format!(
            "PostgreSQL does not accept the password stored in {name}: the database and the secret already disagree, nothing was changed"
        ))
        .help("find the role's real password and store it in the secret, or set the stored one with ALTER ROLE; then rotate"));
    }

    let new = r.begin().await?;
    if let Err(failure) = set_postgres_password(ctx, &new).await {
        // The role may or may not have changed: ask the database.
        return Err(match postgres_accepts(ctx, &new).await {
            Ok(false) => match remove_pending(ctx, &pending_name).await {
                Ok(()) => failure.help("nothing was changed; run the rotation again"),
                Err(e) => failure.help(format!(
                    "the password was not changed, but {pending_name} could not be removed ({e}); run `immich-db secrets rotate {name}` to clean up"
                )),
            },
            _ => failure.help(format!(
                "run `immich-db secrets rotate {name}` again: it finds the journal and finishes or undoes the rotation"
            )),
        });
    }
    r.done(format!(
        "changed the password of role {} in PostgreSQL (sent as a SCRAM-SHA-256 verifier)",
        pg.user
    ));
    fault::point("rotate-consumer");

    if let Err(failure) = r.replace(&new).await {
        // Put the old password back so the secret and the database agree.
        let undo = set_postgres_password(ctx, &current).await;
        return Err(match undo {
            Ok(()) => {
                let _ = remove_pending(ctx, &pending_name).await;
                failure.help("the role's old password was set back: nothing changed; run the rotation again")
            }
            Err(_) => failure.help(format!(
                "PostgreSQL has the new password, stored in {pending_name}; run `immich-db secrets rotate {name}` to finish"
            )),
        });
    }
    r.finish().await?;
    fault::point("rotate-cleared");

    restart(ctx, &service).await?;
    r.done(format!("restarted {service}"));
    check_postgres_switched(ctx, &new, Some(&current)).await?;
    r.done("PostgreSQL accepts the new password and refuses the old one");
    Ok(Action::Rotated)
}

/// After a rotation: the new password works, the old one (when known) no longer.
async fn check_postgres_switched(
    ctx: &Layer,
    new: &SecretValue,
    old: Option<&SecretValue>,
) -> Result<()> {
    if !postgres_accepts(ctx, new).await? {
        return Err(
            Error::failed("PostgreSQL refuses the password now stored in the secret")
                .help("run `immich-db verify`; then `immich-db secrets rotate` again"),
        );
    }
    if let Some(old) = old
        && old != new
        && postgres_accepts(ctx, old).await?
    {
        return Err(
            Error::failed("PostgreSQL still accepts the old password after the rotation")
                .help("check pg_hba.conf: logins over TCP must use a password (scram-sha-256)"),
        );
    }
    Ok(())
}

async fn rotate_valkey(r: &mut Rotation<'_>) -> Result<Action> {
    let ctx = r.ctx;
    let name = r.name;
    let pending_name = r.pending.clone();
    let vk = &ctx.deployment.config.valkey;
    let service = format!("{}.service", vk.container_name);
    backup::require_running(ctx, &vk.container_name, ROTATION_NEEDS).await?;
    let current = r.current().await?;

    let Some(pending) = r.interrupted().await? else {
        if !valkey_accepts(ctx, &current).await? {
            return Err(Error::precondition(format!(
                "Valkey does not accept the password stored in {name}: it runs with another one, nothing was changed"
            ))
            .help(format!("restart {service} so that it reads the secret, then rotate")));
        }
        return rotate_valkey_fresh(r, &service, &current).await;
    };
    if valkey_accepts(ctx, &pending).await? {
        r.adopt(
            &current,
            &pending,
            format!("Valkey already ran with the new password of an interrupted rotation: stored it in {name}"),
        )
        .await?;
    } else if current == pending {
        // The secret was replaced but Valkey not yet restarted with it.
        restart(ctx, &service).await?;
        r.done(format!(
            "restarted {service} with the new password of an interrupted rotation"
        ));
    } else if valkey_accepts(ctx, &current).await? {
        r.undo("Valkey").await?;
        return rotate_valkey_fresh(r, &service, &current).await;
    } else {
        return Err(Error::failed(format!(
            "Valkey accepts neither the password in {name} nor the one in {pending_name} (an interrupted rotation): nothing was changed"
        ))
        .help(format!("restart {service} so it reads {name}, then rotate again")));
    }
    if !valkey_accepts(ctx, &pending).await? {
        return Err(Error::failed(format!(
            "Valkey refuses the password in {name} after the restart"
        ))
        .help(format!("see `journalctl --user -u {service}`")));
    }
    r.finish().await?;
    Ok(Action::FinishedInterrupted)
}

async fn rotate_valkey_fresh(
    r: &mut Rotation<'_>,
    service: &str,
    current: &SecretValue,
) -> Result<Action> {
    let ctx = r.ctx;
    let name = r.name;
    let new = r.begin().await?;
    r.replace(&new).await?;

    if let Err(failure) = restart(ctx, service).await {
        // Back to the old password, which the old container had.
        let undone =
            replace(ctx, name, current).await.is_ok() && restart(ctx, service).await.is_ok();
        if undone {
            let _ = remove_pending(ctx, &r.pending).await;
        }
        return Err(failure.help(if undone {
            "Valkey is back on its old password: nothing changed".to_owned()
        } else {
            format!("run `immich-db secrets rotate {name}` again once {service} starts")
        }));
    }
    r.done(format!("restarted {service} with the new password"));
    fault::point("rotate-consumer");

    if !valkey_accepts(ctx, &new).await? || valkey_accepts(ctx, current).await? {
        return Err(
            Error::failed("Valkey does not use the new password after its restart").help(format!(
                "run `immich-db verify`; then `immich-db secrets rotate {name}` again"
            )),
        );
    }
    r.done("Valkey accepts the new password and refuses the old one");
    r.finish().await?;
    fault::point("rotate-cleared");
    Ok(Action::Rotated)
}

async fn rotate_jwt(r: &mut Rotation<'_>) -> Result<Action> {
    let current = r.current().await?;
    // Nothing holds a copy of this key: an interrupted rotation is always
    // finished.
    if let Some(pending) = r.interrupted().await? {
        let step = format!(
            "stored the new key of an interrupted rotation in {}",
            r.name
        );
        r.adopt(&current, &pending, step).await?;
        r.finish().await?;
        return Ok(Action::FinishedInterrupted);
    }
    let new = r.begin().await?;
    r.replace(&new).await?;
    r.finish().await?;
    fault::point("rotate-cleared");
    Ok(Action::Rotated)
}

#[cfg(test)]
pub(crate) mod tests {
    //! The rotation's logic against fakes: a PostgreSQL that checks logins
    //! against the SCRAM verifier it was given, a Valkey that takes its password
    //! from the secret when it restarts, and every interrupted state a killed
    //! rotation can leave.

    use std::sync::{Arc, Mutex};

    use homelab_podman::{ExecOutput, ExecSpec, FakeRuntime};

    use super::*;
    use crate::backup::tests::{block_on, context_on, running};
    use crate::config::{Loaded, validate};
    use homelab_systemd::{FakeManager, Manager, Scope, UnitState};

    /// A systemd whose restarts also run a hook (Valkey reads its secret).
    pub(crate) struct Hooked {
        pub(crate) inner: FakeManager,
        pub(crate) on_restart: Box<dyn Fn(&str) + Send + Sync>,
    }

    impl std::fmt::Debug for Hooked {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Hooked")
                .field("inner", &self.inner)
                .finish_non_exhaustive()
        }
    }

    #[async_trait::async_trait]
    impl Manager for Hooked {
        fn scope(&self) -> Scope {
            self.inner.scope()
        }
        async fn reachable(&self) -> homelab_systemd::Result<()> {
            self.inner.reachable().await
        }
        async fn daemon_reload(&self) -> homelab_systemd::Result<()> {
            self.inner.daemon_reload().await
        }
        async fn start(&self, units: &[String], wait: Wait) -> homelab_systemd::Result<()> {
            self.inner.start(units, wait).await?;
            for unit in units {
                (self.on_restart)(unit);
            }
            Ok(())
        }
        async fn restart(&self, units: &[String], wait: Wait) -> homelab_systemd::Result<()> {
            self.inner.restart(units, wait).await?;
            for unit in units {
                (self.on_restart)(unit);
            }
            Ok(())
        }
        async fn stop(&self, units: &[String]) -> homelab_systemd::Result<()> {
            self.inner.stop(units).await
        }
        async fn reset_failed(&self, units: &[String]) -> homelab_systemd::Result<()> {
            self.inner.reset_failed(units).await
        }
        async fn units(&self, units: &[&str]) -> homelab_systemd::Result<Vec<UnitState>> {
            self.inner.units(units).await
        }
    }

    /// Whether `password` gives the stored key of `verifier`
    /// (`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, RFC 5802):
    /// the check PostgreSQL makes at a login.
    pub(crate) fn scram_accepts(verifier: &str, password: &[u8]) -> bool {
        use base64::Engine as _;
        use hmac::{KeyInit as _, Mac as _};
        use sha2::Digest as _;
        type Hmac = hmac::Hmac<sha2::Sha256>;
        let mac = |key: &[u8], message: &[u8]| {
            let mut mac = Hmac::new_from_slice(key).unwrap();
            mac.update(message);
            mac.finalize().into_bytes().to_vec()
        };
        let b64 = base64::engine::general_purpose::STANDARD;
        let rest = verifier.strip_prefix("SCRAM-SHA-256$").unwrap();
        let (params, keys) = rest.split_once('$').unwrap();
        let (iterations, salt) = params.split_once(':').unwrap();
        let (stored_key, _) = keys.split_once(':').unwrap();
        let iterations: u32 = iterations.parse().unwrap();
        // Hi(): PBKDF2-HMAC-SHA-256, one block.
        let mut first = b64.decode(salt).unwrap();
        first.extend_from_slice(&1u32.to_be_bytes());
        let mut u = mac(password, &first);
        let mut salted = u.clone();
        for _ in 1..iterations {
            u = mac(password, &u);
            for (s, x) in salted.iter_mut().zip(&u) {
                *s ^= x;
            }
        }
        let client_key = mac(&salted, b"Client Key");
        b64.encode(sha2::Sha256::digest(&client_key)) == stored_key
    }

    /// The fake's check against the example exchange of RFC 7677 (section 3),
    /// and against verifiers of the library that makes them.
    #[test]
    fn the_fake_checks_logins_as_postgresql_does() {
        let rfc = "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";
        assert!(scram_accepts(rfc, b"pencil"));
        assert!(!scram_accepts(rfc, b"pencil2"));
        let made = postgres_protocol::password::scram_sha_256(b"abcdefgh12345678");
        assert!(scram_accepts(&made, b"abcdefgh12345678"));
        assert!(!made.contains("abcdefgh12345678"));
        assert_ne!(
            made,
            postgres_protocol::password::scram_sha_256(b"abcdefgh12345678")
        );
    }

    /// What the fake PostgreSQL holds for the role.
    #[derive(Debug, Clone)]
    enum Role {
        Plain(Vec<u8>),
        Verifier(String),
    }

    impl Role {
        fn accepts(&self, password: &[u8]) -> bool {
            match self {
                Self::Plain(p) => p == password,
                Self::Verifier(v) => scram_accepts(v, password),
            }
        }
    }

    struct Fixture {
        ctx: Layer,
        systemd: Arc<Hooked>,
        runtime: FakeRuntime,
        role: Arc<Mutex<Role>>,
        valkey: Arc<Mutex<Vec<u8>>>,
    }

    /// The stdin line a command got, without its newline.
    fn stdin_line(spec: &ExecSpec) -> Vec<u8> {
        let mut bytes = spec.stdin_bytes().unwrap_or_default().to_vec();
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
        }
        bytes
    }

    fn fixture() -> Fixture {
        let c = validate(&Loaded::defaults()).unwrap().config;
        let runtime = FakeRuntime::new();
        runtime.add_container(running(&c.postgres.container_name));
        runtime.add_container(running(&c.valkey.container_name));
        runtime.add_secret(&c.postgres.password_secret, SecretValue::new("pgold"));
        runtime.add_secret(&c.valkey.password_secret, SecretValue::new("vkold"));
        runtime.add_secret(&c.immich.jwt_secret, SecretValue::new("jwtold"));

        let role = Arc::new(Mutex::new(Role::Plain(b"pgold".to_vec())));
        let db = role.clone();
        runtime.script_exec(&c.postgres.container_name, move |spec| {
            let command = spec.command().join(" ");
            let ok = |stdout: &str| ExecOutput::new(0, stdout.as_bytes().to_vec(), Vec::new());
            if command.contains("read -r PGPASSWORD") {
                if db.lock().unwrap().accepts(&stdin_line(spec)) {
                    return ok("1\n");
                }
                return ExecOutput::new(
                    2,
                    Vec::new(),
                    b"psql: error: FATAL:  password authentication failed for user \"immich\"\n"
                        .to_vec(),
                );
            }
            let sql = String::from_utf8(spec.stdin_bytes().unwrap_or_default().to_vec()).unwrap();
            let verifier = sql
                .split_once("PASSWORD '")
                .and_then(|(_, rest)| rest.split_once('\''))
                .map(|(v, _)| v.to_owned())
                .unwrap();
            assert!(!sql.contains("pgold"), "a cleartext password in SQL");
            *db.lock().unwrap() = Role::Verifier(verifier);
            ok("")
        });

        let valkey = Arc::new(Mutex::new(b"vkold".to_vec()));
        let live = valkey.clone();
        runtime.script_exec(&c.valkey.container_name, move |spec| {
            let (stdout, stderr) = if *live.lock().unwrap() == stdin_line(spec) {
                ("PONG\n", "")
            } else {
                (
                    "NOAUTH Authentication required.\n",
                    "AUTH failed: WRONGPASS invalid username-password pair or user is disabled.\n",
                )
            };
            ExecOutput::new(0, stdout, stderr)
        });

        let store = runtime.clone();
        let restarted = valkey.clone();
        let vk_service = format!("{}.service", c.valkey.container_name);
        let vk_secret = c.valkey.password_secret.clone();
        let systemd = Arc::new(Hooked {
            inner: FakeManager::new(),
            on_restart: Box::new(move |unit| {
                if unit == vk_service {
                    let value = store.secret_value(&vk_secret).unwrap();
                    *restarted.lock().unwrap() = value.expose().to_vec();
                }
            }),
        });
        let ctx = context_on(&runtime, systemd.clone());
        Fixture {
            ctx,
            systemd,
            runtime,
            role,
            valkey,
        }
    }

    impl Fixture {
        /// The fake systemd under the hook, its next `restarts` restarts failing.
        fn systemd_failing_restarts(&self, restarts: usize) -> &FakeManager {
            self.systemd.inner.fail_restarts(restarts);
            &self.systemd.inner
        }
        fn secret(&self, name: &str) -> Option<Vec<u8>> {
            self.runtime.secret_value(name).map(|v| v.expose().to_vec())
        }
        fn pg(&self) -> String {
            self.ctx.deployment.config.postgres.password_secret.clone()
        }
        fn vk(&self) -> String {
            self.ctx.deployment.config.valkey.password_secret.clone()
        }
        /// Runs a rotation that must succeed.
        fn rotate(&self, name: &str) -> RotateReport {
            block_on(rotate(&self.ctx, name)).unwrap()
        }
        /// Runs a rotation that must fail.
        fn rotate_err(&self, name: &str) -> Error {
            block_on(rotate(&self.ctx, name)).unwrap_err()
        }
        /// What a rotation killed after writing its journal leaves.
        fn journal(&self, name: &str, value: &str) {
            block_on(
                self.ctx
                    .secrets
                    .create(&pending_name(name), &SecretValue::new(value)),
            )
            .unwrap();
        }
        /// What a rotation killed after replacing the secret leaves (with the
        /// journal).
        fn store(&self, name: &str, value: &str) {
            block_on(self.ctx.secrets.replace(name, &SecretValue::new(value))).unwrap();
        }
        /// The database accepts exactly the stored password, and no journal is
        /// left.
        fn assert_postgres_consistent(&self) {
            let stored = self.secret(&self.pg()).unwrap();
            assert!(self.role.lock().unwrap().accepts(&stored));
            assert!(self.secret(&pending_name(&self.pg())).is_none());
        }
        fn assert_valkey_consistent(&self) {
            let stored = self.secret(&self.vk()).unwrap();
            assert_eq!(*self.valkey.lock().unwrap(), stored);
            assert!(self.secret(&pending_name(&self.vk())).is_none());
        }
    }

    #[test]
    fn postgres_rotation_alters_the_role_with_a_verifier_and_stores_the_new_value() {
        let f = fixture();
        let report = f.rotate(&f.pg());
        assert_eq!(report.action, Action::Rotated);
        let stored = f.secret(&f.pg()).unwrap();
        assert_ne!(stored, b"pgold");
        assert_eq!(stored.len(), 48);
        assert!(matches!(*f.role.lock().unwrap(), Role::Verifier(_)));
        assert!(!f.role.lock().unwrap().accepts(b"pgold"));
        f.assert_postgres_consistent();
    }

    #[test]
    fn an_interrupted_postgres_rotation_is_undone_or_finished() {
        // Killed after the journal was written: the database has the old
        // password, so the journal is dropped and a new rotation runs.
        let f = fixture();
        f.journal(&f.pg(), "pgnew");
        let report = f.rotate(&f.pg());
        assert_eq!(report.action, Action::Rotated);
        assert!(report.steps[0].contains("undid"), "{:?}", report.steps);
        assert_ne!(f.secret(&f.pg()).unwrap(), b"pgnew");
        f.assert_postgres_consistent();

        // Killed after ALTER ROLE: the database has the journal's value, which
        // becomes the secret.
        let f = fixture();
        f.journal(&f.pg(), "pgnew");
        *f.role.lock().unwrap() = Role::Plain(b"pgnew".to_vec());
        let report = f.rotate(&f.pg());
        assert_eq!(report.action, Action::FinishedInterrupted);
        assert_eq!(f.secret(&f.pg()).unwrap(), b"pgnew");
        f.assert_postgres_consistent();

        // Killed after the secret was replaced: only the journal is left.
        let f = fixture();
        f.journal(&f.pg(), "pgnew");
        f.store(&f.pg(), "pgnew");
        *f.role.lock().unwrap() = Role::Plain(b"pgnew".to_vec());
        let report = f.rotate(&f.pg());
        assert_eq!(report.action, Action::FinishedInterrupted);
        f.assert_postgres_consistent();
    }

    #[test]
    fn a_database_that_accepts_neither_password_changes_nothing() {
        let f = fixture();
        f.journal(&f.pg(), "pgnew");
        *f.role.lock().unwrap() = Role::Plain(b"something else".to_vec());
        let err = f.rotate_err(&f.pg());
        assert!(err.what.contains("neither"), "{err}");
        assert_eq!(f.secret(&f.pg()).unwrap(), b"pgold");
        assert_eq!(f.secret(&pending_name(&f.pg())).unwrap(), b"pgnew");

        let f = fixture();
        *f.role.lock().unwrap() = Role::Plain(b"something else".to_vec());
        let err = f.rotate_err(&f.pg());
        assert_eq!(err.kind, crate::error::ErrorKind::Precondition, "{err}");
        assert_eq!(f.secret(&f.pg()).unwrap(), b"pgold");
        assert!(f.secret(&pending_name(&f.pg())).is_none());
    }

    #[test]
    fn valkey_rotation_restarts_valkey_with_the_new_secret() {
        let f = fixture();
        let report = f.rotate(&f.vk());
        assert_eq!(report.action, Action::Rotated);
        assert_ne!(f.secret(&f.vk()).unwrap(), b"vkold");
        f.assert_valkey_consistent();
    }

    #[test]
    fn a_restart_that_fails_once_is_followed_by_a_start() {
        let f = fixture();
        let systemd = f.systemd_failing_restarts(1);
        let report = f.rotate(&f.vk());
        assert_eq!(report.action, Action::Rotated);
        f.assert_valkey_consistent();
        let service = format!("{}.service", f.ctx.deployment.config.valkey.container_name);
        assert_eq!(
            systemd.calls(),
            [format!("restart {service}"), format!("start {service}")]
        );

        // When the start fails too, the rotation fails and says both.
        let f = fixture();
        f.systemd_failing_restarts(1).forget_units_once();
        let failure = f.rotate_err(&f.vk());
        assert!(failure.what.contains("started once more"), "{failure}");
    }

    #[test]
    fn an_interrupted_valkey_rotation_is_undone_or_finished() {
        // Journal only: undone, then rotated afresh.
        let f = fixture();
        f.journal(&f.vk(), "vknew");
        assert_eq!(f.rotate(&f.vk()).action, Action::Rotated);
        f.assert_valkey_consistent();
        assert_ne!(f.secret(&f.vk()).unwrap(), b"vknew");

        // Secret replaced, Valkey not restarted yet.
        let f = fixture();
        f.journal(&f.vk(), "vknew");
        f.store(&f.vk(), "vknew");
        assert_eq!(f.rotate(&f.vk()).action, Action::FinishedInterrupted);
        f.assert_valkey_consistent();
        assert_eq!(f.secret(&f.vk()).unwrap(), b"vknew");

        // Restarted with the new value, journal still there.
        let f = fixture();
        f.journal(&f.vk(), "vknew");
        f.store(&f.vk(), "vknew");
        *f.valkey.lock().unwrap() = b"vknew".to_vec();
        assert_eq!(f.rotate(&f.vk()).action, Action::FinishedInterrupted);
        f.assert_valkey_consistent();
    }

    #[test]
    fn jwt_rotation_replaces_the_key_and_finishes_an_interrupted_one() {
        let f = fixture();
        let jwt = f.ctx.deployment.config.immich.jwt_secret.clone();
        let report = f.rotate(&jwt);
        assert_eq!(report.action, Action::Rotated);
        // Immich does not read it: no claim that sessions end.
        assert!(
            report.warnings[0].contains("unused since early 2023")
                && !report.warnings[0].contains("session"),
            "{:?}",
            report.warnings
        );
        assert_ne!(f.secret(&jwt).unwrap(), b"jwtold");
        f.journal(&jwt, "jwtnew");
        assert_eq!(f.rotate(&jwt).action, Action::FinishedInterrupted);
        assert_eq!(f.secret(&jwt).unwrap(), b"jwtnew");
        assert!(f.secret(&pending_name(&jwt)).is_none());
    }

    #[test]
    fn unknown_names_are_bad_input_and_list_the_secrets() {
        let f = fixture();
        let err = f.rotate_err("redis_password");
        assert_eq!(err.kind, crate::error::ErrorKind::BadInput);
        assert!(err.help.unwrap().contains("postgres-password"));
    }

    #[test]
    fn passwords_travel_only_on_standard_input() {
        let f = fixture();
        f.rotate(&f.pg());
        f.rotate(&f.vk());
        let stored = [
            f.secret(&f.pg()).unwrap(),
            f.secret(&f.vk()).unwrap(),
            b"pgold".to_vec(),
            b"vkold".to_vec(),
        ];
        for call in f.runtime.calls() {
            let args = call.args.join(" ");
            for value in &stored {
                assert!(
                    !args.contains(std::str::from_utf8(value).unwrap()),
                    "a password in the arguments of {:?}",
                    call.operation
                );
            }
        }
    }
}
