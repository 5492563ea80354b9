//! One of the deployment's secrets set to a value the user gives (a password
//! kept in a password manager, say), and that value given to its consumer, so
//! that the secret and what it opens never disagree.
//!
//! PostgreSQL keeps its role's password in the database itself. When the
//! database already accepts the value, the secret is only stored. Otherwise
//! the role gets the value first (`ALTER ROLE`, through the server's local
//! socket, where the server trusts its own user), and the secret is stored
//! after. When the deployment's server does not run, a server of the same
//! image is started on the data directory for this alone, without a network,
//! and stopped again before the secret is stored. So a secret that does not
//! open its database is never stored: a set cut short leaves the old secret
//! (or none), and running it again finishes it.
//!
//! Valkey keeps no password in its data: it reads its `requirepass` from the
//! secret at each start. A running Valkey is restarted with the new value.
//!
//! In debug builds the fault hook (`IMMICH_DB_FAULT_AT`) can stop a set at
//! `set-consumer`: the consumer has the value, the secret is not stored yet.

use std::path::Path;
use std::time::{Duration, Instant};

use homelab_podman::{ExecSpec, RunSpec};
use homelab_secrets::{SecretValue, StoreError, check};
use homelab_systemd::ActiveState;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::fault;
use crate::layer::Layer;
use crate::progress::Event;
use crate::rotate::{self, Kind};

/// How long the server started for a set may take to accept connections (a
/// database that was not shut down cleanly recovers first).
const HELPER_READY_LIMIT: Duration = Duration::from_secs(180);

/// How often the server started for a set is asked whether it is ready.
const HELPER_POLL: Duration = Duration::from_millis(250);

/// What the consumer of a secret needed for the value set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ConsumerChange {
    /// It already used the value: the secret was only stored.
    AlreadyHad,
    /// PostgreSQL's role was given the value as its password.
    Rekeyed,
    /// Valkey was restarted with the value.
    Restarted,
    /// It reads the value when it next starts (it does not run now).
    AtNextStart,
    /// Nothing here reads it (the Immich server does, when it restarts).
    Outside,
}

/// What setting a secret did.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct SetReport {
    /// The secret.
    pub secret: String,
    /// What it is for.
    pub kind: Kind,
    /// What its consumer needed.
    pub consumer: ConsumerChange,
    /// What was done, in order.
    pub steps: Vec<String>,
    /// What the user should know or do next.
    pub warnings: Vec<String>,
}

/// Whether a PostgreSQL data directory holds a database cluster: its
/// `PG_VERSION` at the top, or where images from PostgreSQL 18 on put the
/// cluster (`<major>/docker`). A directory that exists but cannot be read
/// counts as holding one.
pub(crate) fn database_initialised(dir: &Path) -> bool {
    if dir.join("PG_VERSION").exists() {
        return true;
    }
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .flatten()
            .any(|e| e.path().join("docker/PG_VERSION").exists()),
        Err(e) => e.kind() == std::io::ErrorKind::PermissionDenied,
    }
}

/// The refusal of a deploy (or plan) that would generate a PostgreSQL
/// password while the data directory holds a database initialised with
/// another one: the new secret would not open it. Nothing has been created.
pub(crate) fn lost_postgres_password(ctx: &Layer) -> Error {
    let d = &ctx.deployment;
    let name = &d.config.postgres.password_secret;
    Error::precondition(format!(
        "the secret {name} does not exist, but {} holds a database that was initialised with the password it held: a new password would not open it",
        d.dirs.postgres.display()
    ))
    .at("[postgres] password_secret")
    .help(format!(
        "give the password back with `immich-db secrets set {name}`, which reads it from standard input (from your password manager, say); \
         if it is lost, give a new one the same way: the database's role gets it. Then deploy. Nothing was changed"
    ))
}

/// Refuses a value its consumer could not take as given: empty, or with
/// whitespace or control characters (Valkey's configuration splits on
/// spaces; a line break ends the value where it is read as a line).
fn check_value(name: &str, value: &SecretValue) -> Result<()> {
    let bytes = value.expose();
    let reason = if bytes.is_empty() {
        Some("it is empty")
    } else if bytes
        .iter()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        Some("it holds whitespace, a line break or a control character")
    } else if bytes.len() > homelab_podman::MAX_SECRET_LEN {
        Some("it is longer than podman stores")
    } else {
        None
    };
    match reason {
        Some(why) => Err(Error::bad_input(format!(
            "the value given for {name} cannot be used: {why}"
        ))
        .help("give the value alone on standard input (one line; its final line break is dropped); nothing was changed")),
        None => Ok(()),
    }
}

/// One set in progress.
struct Setting<'a> {
    ctx: &'a Layer,
    name: &'a str,
    value: &'a SecretValue,
    steps: Vec<String>,
}

impl Setting<'_> {
    fn done(&mut self, what: impl Into<String>) {
        let what = what.into();
        self.ctx.tell(Event::Done(&what));
        self.steps.push(what);
    }

    /// The secret's value now, `None` when it does not exist.
    async fn stored(&self) -> Result<Option<SecretValue>> {
        match self.ctx.secrets.read(self.name).await {
            Ok(value) => Ok(Some(value)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(Error::failed(format!(
                "cannot read the secret {}: {e}",
                self.name
            ))),
        }
    }

    /// Stores the value in the secret (creating it where it is missing),
    /// then drops a rotation's journal, which the value supersedes.
    async fn store(&mut self) -> Result<()> {
        let ctx = self.ctx;
        let name = self.name;
        let existed = store_value(ctx, name, self.value).await?;
        self.done(if existed {
            format!("stored the value in the secret {name}")
        } else {
            format!("created the secret {name} with the value")
        });
        self.drop_journal().await
    }

    /// Removes the journal secret of a rotation or an earlier set, if any.
    async fn drop_journal(&mut self) -> Result<()> {
        let pending = rotate::pending_name(self.name);
        match self.ctx.secrets.remove(&pending).await {
            Ok(()) => {
                self.done(format!("removed the journal secret {pending}"));
                Ok(())
            }
            Err(StoreError::NotFound { .. }) => Ok(()),
            Err(e) => Err(Error::failed(format!(
                "cannot remove the secret {pending}: {e}"
            ))),
        }
    }

    /// Keeps the value in the journal secret while the consumer is changed:
    /// a set cut short then shows as an interrupted rotation, which
    /// `secrets rotate` finishes.
    async fn journal(&mut self) -> Result<()> {
        let pending = rotate::pending_name(self.name);
        store_value(self.ctx, &pending, self.value).await?;
        self.done(format!("stored the value in the journal secret {pending}"));
        Ok(())
    }
}

/// Creates or replaces `name` with `value`; whether it existed.
async fn store_value(ctx: &Layer, name: &str, value: &SecretValue) -> Result<bool> {
    let store = ctx.secrets.as_ref();
    match store.create(name, value).await {
        Ok(()) => Ok(false),
        Err(StoreError::AlreadyExists { .. }) => store
            .replace(name, value)
            .await
            .map(|()| true)
            .map_err(|e| Error::failed(format!("cannot replace the secret {name}: {e}"))),
        Err(e) => Err(Error::failed(format!(
            "cannot create the secret {name}: {e}"
        ))),
    }
}

/// Sets the secret `name` of the deployment to `value` and gives it to its
/// consumer.
pub(crate) async fn set(ctx: &Layer, name: &str, value: &SecretValue) -> Result<SetReport> {
    let kind = rotate::kind_of(ctx, name)?;
    check_value(name, value)?;
    let mut warnings: Vec<String> = check(value, &kind.policy())
        .iter()
        .map(|finding| format!("{name}: {finding}"))
        .collect();
    let mut setting = Setting {
        ctx,
        name,
        value,
        steps: Vec::new(),
    };
    let consumer = match kind {
        Kind::PostgresPassword => set_postgres(&mut setting).await?,
        Kind::ValkeyPassword => set_valkey(&mut setting).await?,
        Kind::JwtSecret => {
            setting.store().await?;
            ConsumerChange::Outside
        }
    };
    match (kind, consumer) {
        (_, ConsumerChange::AlreadyHad) => {}
        (Kind::JwtSecret, _) => warnings.push(
            "restart the Immich server so that it reads the key; sessions signed with another key end"
                .to_owned(),
        ),
        _ => warnings.push(format!(
            "restart the Immich server (and anything else that uses {name}) so that it reads the password"
        )),
    }
    Ok(SetReport {
        secret: name.to_owned(),
        kind,
        consumer,
        steps: setting.steps,
        warnings,
    })
}

/// Whether the container runs; a container that does not exist does not.
async fn runs(ctx: &Layer, container: &str) -> Result<bool> {
    match ctx.runtime.inspect_container(container).await {
        Ok(info) => Ok(info.state.running),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(ctx.podman_failure(&format!("inspecting {container}"), &e)),
    }
}

async fn set_postgres(s: &mut Setting<'_>) -> Result<ConsumerChange> {
    let ctx = s.ctx;
    let d = &ctx.deployment;
    let pg = &d.config.postgres;
    if runs(ctx, &pg.container_name).await? {
        return set_postgres_running(s, &pg.container_name).await;
    }
    if !database_initialised(&d.dirs.postgres) {
        // PostgreSQL initialises its database with the secret at its first
        // start.
        s.store().await?;
        return Ok(ConsumerChange::AtNextStart);
    }
    let service = format!("{}.service", pg.container_name);
    let unit = ctx.systemd.unit(&service).await?;
    if unit.active.is_running() || unit.active == ActiveState::Deactivating {
        return Err(Error::precondition(format!(
            "{service} is {} but its container does not run: PostgreSQL is starting or stopping",
            unit.active
        ))
        .help("wait until it has started (`immich-db status`), then run the command again; nothing was changed"));
    }
    let helper = Helper::start(ctx).await?;
    let result = give_role(s, helper.name()).await;
    let stopped = helper.stop().await;
    let change = result?;
    stopped?;
    s.done("stopped the PostgreSQL server started for this");
    s.store().await?;
    Ok(change)
}

/// The deployment's own server runs: it gets the value, then the secret.
async fn set_postgres_running(s: &mut Setting<'_>, container: &str) -> Result<ConsumerChange> {
    let ctx = s.ctx;
    if rotate::postgres_accepts_in(ctx, container, s.value).await? {
        s.done("PostgreSQL accepts the value already");
        s.store().await?;
        return Ok(ConsumerChange::AlreadyHad);
    }
    s.journal().await?;
    alter_role(ctx, container, s.value).await?;
    s.done(format!(
        "gave the role {} the value as its password (as a SCRAM-SHA-256 verifier)",
        ctx.deployment.config.postgres.user
    ));
    fault::point("set-consumer");
    s.store().await?;
    if !rotate::postgres_accepts_in(ctx, container, s.value).await? {
        return Err(
            Error::failed("PostgreSQL refuses the value after it was given the password")
                .help("run `immich-db verify`; then set the secret again"),
        );
    }
    s.done("PostgreSQL accepts the value");
    Ok(ConsumerChange::Rekeyed)
}

/// The server started for the set has the data: a login with the value, and
/// the role given it where the login is refused.
async fn give_role(s: &mut Setting<'_>, container: &str) -> Result<ConsumerChange> {
    let ctx = s.ctx;
    if rotate::postgres_accepts_in(ctx, container, s.value).await? {
        s.done("the database accepts the value already");
        return Ok(ConsumerChange::AlreadyHad);
    }
    alter_role(ctx, container, s.value).await?;
    s.done(format!(
        "gave the role {} the value as its password (as a SCRAM-SHA-256 verifier)",
        ctx.deployment.config.postgres.user
    ));
    fault::point("set-consumer");
    if !rotate::postgres_accepts_in(ctx, container, s.value).await? {
        return Err(Error::failed(
            "the database refuses the value after it was given the password",
        )
        .help("check pg_hba.conf: logins over TCP must use a password (scram-sha-256)"));
    }
    Ok(ConsumerChange::Rekeyed)
}

/// Gives the deployment's role `value` as its password, sending only its
/// SCRAM-SHA-256 verifier on `psql`'s standard input, over the local socket
/// of the server in `container`.
async fn alter_role(ctx: &Layer, container: &str, value: &SecretValue) -> Result<()> {
    let pg = &ctx.deployment.config.postgres;
    let verifier = postgres_protocol::password::scram_sha_256(value.expose());
    // The role name passed the configuration's identifier check.
    let sql = format!("ALTER ROLE \"{}\" PASSWORD '{verifier}';\n", pg.user);
    let spec = ExecSpec::new([
        "psql",
        "-X",
        "-w",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-U",
        pg.user.as_str(),
        "-d",
        pg.database.as_str(),
    ])
    .stdin(sql.into_bytes());
    let out = ctx
        .runtime
        .exec(container, &spec)
        .await
        .map_err(|e| ctx.podman_failure("changing the role's password", &e))?;
    if out.success() {
        Ok(())
    } else {
        Err(Error::failed(format!(
            "psql in {container} could not change the role's password (exit {}): {}",
            out.exit_code,
            out.stderr_text().trim()
        )))
    }
}

/// A PostgreSQL server of the deployment's image, started on its data
/// directory for a set alone: no network, the deployment's user in a rootless
/// one.
struct Helper<'a> {
    ctx: &'a Layer,
    name: String,
}

/// The name of the container a set starts on the deployment's data.
pub(crate) fn helper_name(ctx: &Layer) -> String {
    format!(
        "{}-secret-set",
        ctx.deployment.config.postgres.container_name
    )
}

impl<'a> Helper<'a> {
    async fn start(ctx: &'a Layer) -> Result<Self> {
        let d = &ctx.deployment;
        let pg = &d.config.postgres;
        let name = helper_name(ctx);
        // One left by a set that was cut short goes first.
        match ctx.runtime.remove_container(&name, true).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(ctx.podman_failure(&format!("removing {name}"), &e)),
        }
        ctx.tell(Event::Phase(
            "starting PostgreSQL on the data directory to give it the password",
        ));
        let spec = RunSpec::new(&name, &pg.image)
            .bind(
                d.dirs.postgres.display().to_string(),
                "/var/lib/postgresql/data",
            )
            .keep_id(d.rootless);
        ctx.runtime
            .run_container(&spec)
            .await
            .map_err(|e| ctx.podman_failure(&format!("starting {name}"), &e))?;
        let helper = Self { ctx, name };
        if let Err(failure) = helper.ready().await {
            let _ = helper.stop().await;
            return Err(failure);
        }
        Ok(helper)
    }

    fn name(&self) -> &str {
        &self.name
    }

    /// Waits until the server accepts connections over TCP in its container.
    async fn ready(&self) -> Result<()> {
        let ctx = self.ctx;
        let pg = &ctx.deployment.config.postgres;
        let check = ExecSpec::new([
            "sh".to_owned(),
            "-c".to_owned(),
            crate::desired::postgres_health_command(&pg.user, &pg.database),
        ]);
        let start = Instant::now();
        loop {
            match ctx.runtime.exec(&self.name, &check).await {
                Ok(out) if out.success() => return Ok(()),
                Err(e) if !runs(ctx, &self.name).await.unwrap_or(false) => {
                    let logs = ctx
                        .runtime
                        .container_logs(&self.name, 15)
                        .await
                        .map(|lines| {
                            lines
                                .into_iter()
                                .map(|l| l.text)
                                .collect::<Vec<_>>()
                                .join("\n    ")
                        })
                        .unwrap_or_default();
                    return Err(Error::failed(format!(
                        "PostgreSQL started on {} to give it the password stopped ({e}); its last lines:\n    {logs}",
                        ctx.deployment.dirs.postgres.display()
                    )));
                }
                // Not ready yet, or not answering yet.
                Ok(_) | Err(_) => {}
            }
            if start.elapsed() > HELPER_READY_LIMIT {
                return Err(Error::failed(format!(
                    "PostgreSQL started on {} to give it the password did not accept connections within {} s",
                    ctx.deployment.dirs.postgres.display(),
                    HELPER_READY_LIMIT.as_secs()
                )));
            }
            tokio::time::sleep(HELPER_POLL).await;
        }
    }

    /// Stops and removes it.
    async fn stop(self) -> Result<()> {
        match self.ctx.runtime.remove_container(&self.name, true).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(self
                .ctx
                .podman_failure(&format!("stopping {}", self.name), &e)
                .help(format!(
                    "remove it (`podman rm -f {}`) before PostgreSQL starts again; nothing was stored",
                    self.name
                ))),
        }
    }
}

async fn set_valkey(s: &mut Setting<'_>) -> Result<ConsumerChange> {
    let ctx = s.ctx;
    let vk = &ctx.deployment.config.valkey;
    if !runs(ctx, &vk.container_name).await? {
        s.store().await?;
        return Ok(ConsumerChange::AtNextStart);
    }
    let old = s.stored().await?;
    if old.as_ref() == Some(s.value) && rotate::valkey_accepts(ctx, s.value).await? {
        s.done("Valkey uses the value already");
        s.drop_journal().await?;
        return Ok(ConsumerChange::AlreadyHad);
    }
    let service = format!("{}.service", vk.container_name);
    s.journal().await?;
    store_value(ctx, s.name, s.value).await?;
    s.done(format!("stored the value in the secret {}", s.name));
    if let Err(failure) = rotate::restart(ctx, &service).await {
        // Back to the old value, which the old container had.
        let undone = match &old {
            Some(old) => {
                store_value(ctx, s.name, old).await.is_ok()
                    && rotate::restart(ctx, &service).await.is_ok()
            }
            None => false,
        };
        if undone {
            let _ = s.drop_journal().await;
        }
        return Err(failure.help(if undone {
            "Valkey is back on its old password: nothing changed".to_owned()
        } else {
            format!(
                "run `immich-db secrets set {}` again once {service} starts",
                s.name
            )
        }));
    }
    s.done(format!("restarted {service} with the value"));
    fault::point("set-consumer");
    if !rotate::valkey_accepts(ctx, s.value).await? {
        return Err(
            Error::failed("Valkey does not use the value after its restart").help(format!(
                "run `immich-db verify`; then `immich-db secrets set {}` again",
                s.name
            )),
        );
    }
    s.done("Valkey accepts the value");
    s.drop_journal().await?;
    Ok(ConsumerChange::Restarted)
}

#[cfg(test)]
mod tests {
    //! Setting secrets against fakes: a PostgreSQL that checks logins against
    //! the SCRAM verifier it was given (the deployment's, or one started on the
    //! data for the set), a Valkey that takes its password when restarted.

    use std::sync::{Arc, Mutex};

    use homelab_podman::{ExecOutput, FakeRuntime, ImageInfo, Operation, Runtime as _};
    use homelab_systemd::FakeManager;

    use super::*;
    use crate::backup::tests::{block_on, running};
    use crate::config::{Loaded, validate};
    use crate::rotate::tests::scram_accepts;

    #[test]
    fn a_data_directory_holds_a_database_once_it_has_its_version_file() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!database_initialised(dir.path()));
        assert!(!database_initialised(&dir.path().join("missing")));
        std::fs::create_dir_all(dir.path().join("18/docker")).unwrap();
        assert!(!database_initialised(dir.path()));
        std::fs::write(dir.path().join("18/docker/PG_VERSION"), "18\n").unwrap();
        assert!(database_initialised(dir.path()));
        let top = tempfile::tempdir().unwrap();
        std::fs::write(top.path().join("PG_VERSION"), "17\n").unwrap();
        assert!(database_initialised(top.path()));
    }

    #[test]
    fn values_a_consumer_cannot_take_are_refused_without_showing_them() {
        for bad in ["", "two words", "line\nbreak", "tab\there", "nul\0x"] {
            let err = check_value("pw", &SecretValue::new(bad)).unwrap_err();
            assert_eq!(err.kind, crate::ErrorKind::BadInput, "{bad:?}");
            if !bad.is_empty() {
                assert!(!err.to_string().contains(bad), "{err}");
            }
        }
        check_value(
            "pw",
            &SecretValue::new("q2nO0Z6nHq8oVhC3F4mJ7bXyTzR1sWkPd9LuEaGiY+M="),
        )
        .unwrap();
    }

    /// What the fake database holds for the role: a password, or the verifier
    /// an `ALTER ROLE` gave it.
    #[derive(Debug, Clone)]
    enum Role {
        Plain(Vec<u8>),
        Verifier(String),
    }

    struct Fixture {
        ctx: Layer,
        runtime: FakeRuntime,
        systemd: Arc<FakeManager>,
        role: Arc<Mutex<Role>>,
        _data: tempfile::TempDir,
    }

    /// The stdin line a command got, without its newline.
    fn line(bytes: &[u8]) -> &[u8] {
        bytes.strip_suffix(b"\n").unwrap_or(bytes)
    }

    /// PostgreSQL in `container`: logins over TCP checked against the role,
    /// `ALTER ROLE` on the local socket changing it, the readiness check ready.
    fn database(runtime: &FakeRuntime, container: &str, role: &Arc<Mutex<Role>>) {
        let role = role.clone();
        runtime.script_exec(container, move |spec| {
            let command = spec.command().join(" ");
            let stdin = spec.stdin_bytes().unwrap_or_default();
            if command.contains("read -r PGPASSWORD") {
                let accepted = match &*role.lock().unwrap() {
                    Role::Plain(p) => p == line(stdin),
                    Role::Verifier(v) => scram_accepts(v, line(stdin)),
                };
                return if accepted {
                    ExecOutput::new(0, "1\n", "")
                } else {
                    ExecOutput::new(2, "", "FATAL:  password authentication failed for user\n")
                };
            }
            if command.contains("pg_isready") {
                return ExecOutput::new(0, "accepting connections\n", "");
            }
            let sql = String::from_utf8_lossy(stdin).into_owned();
            let verifier = sql
                .split_once("PASSWORD '")
                .and_then(|(_, rest)| rest.split_once('\''))
                .map(|(v, _)| v.to_owned())
                .unwrap();
            *role.lock().unwrap() = Role::Verifier(verifier);
            ExecOutput::new(0, "", "")
        });
    }

    /// The default deployment with its PostgreSQL data in a directory of its
    /// own (`initialised`: it holds a database); the database's role has the
    /// password `old`.
    fn fixture(initialised: bool) -> Fixture {
        let data = tempfile::tempdir().unwrap();
        if initialised {
            std::fs::write(data.path().join("PG_VERSION"), "17\n").unwrap();
        }
        let mut deployment = validate(&Loaded::defaults()).unwrap();
        deployment.dirs.postgres = data.path().to_path_buf();
        let runtime = FakeRuntime::new();
        let mut image = ImageInfo::new("0".repeat(64));
        image.tags = vec![deployment.config.postgres.image.clone()];
        runtime.add_image(&image);
        let role = Arc::new(Mutex::new(Role::Plain(b"old".to_vec())));
        database(&runtime, &deployment.config.postgres.container_name, &role);
        let systemd = Arc::new(FakeManager::new());
        let ctx = Layer::new(
            deployment,
            systemd.clone(),
            Arc::new(runtime.clone()),
            Arc::new(runtime.clone()),
        );
        database(&runtime, &helper_name(&ctx), &role);
        Fixture {
            ctx,
            runtime,
            systemd,
            role,
            _data: data,
        }
    }

    impl Fixture {
        fn set(&self, name: &str, value: &str) -> Result<SetReport> {
            block_on(set(&self.ctx, name, &SecretValue::new(value)))
        }
        fn pg(&self) -> String {
            self.ctx.deployment.config.postgres.password_secret.clone()
        }
        fn stored(&self, name: &str) -> Option<Vec<u8>> {
            self.runtime.secret_value(name).map(|v| v.expose().to_vec())
        }
        fn accepts(&self, password: &[u8]) -> bool {
            match &*self.role.lock().unwrap() {
                Role::Plain(p) => p == password,
                Role::Verifier(v) => scram_accepts(v, password),
            }
        }
        fn run_postgres(&self) {
            self.runtime
                .add_container(running(&self.ctx.deployment.config.postgres.container_name));
        }
    }

    #[test]
    fn a_value_the_running_database_accepts_is_only_stored() {
        let f = fixture(true);
        f.run_postgres();
        let report = f.set(&f.pg(), "old").unwrap();
        assert_eq!(report.consumer, ConsumerChange::AlreadyHad);
        assert_eq!(f.stored(&f.pg()).unwrap(), b"old");
        assert!(matches!(*f.role.lock().unwrap(), Role::Plain(_)));
        assert!(f.runtime.calls_to(Operation::RunContainer).is_empty());
        assert!(report.warnings.iter().all(|w| !w.contains("restart")));
    }

    #[test]
    fn a_new_value_is_given_to_the_running_database_before_it_is_stored() {
        let f = fixture(true);
        f.run_postgres();
        let report = f.set(&f.pg(), "ANewPassword0123456789").unwrap();
        assert_eq!(report.consumer, ConsumerChange::Rekeyed);
        assert!(f.accepts(b"ANewPassword0123456789"));
        assert!(!f.accepts(b"old"));
        assert_eq!(f.stored(&f.pg()).unwrap(), b"ANewPassword0123456789");
        assert!(f.stored(&rotate::pending_name(&f.pg())).is_none());
        // The cleartext went to no command's arguments or SQL.
        for call in f.runtime.calls() {
            assert!(!call.args.join(" ").contains("ANewPassword"), "{call:?}");
        }
        assert!(
            report
                .warnings
                .iter()
                .any(|w| w.contains("restart the Immich server"))
        );
    }

    #[test]
    fn a_stopped_database_gets_the_value_from_a_server_started_for_it_before_the_secret_exists() {
        let f = fixture(true);
        let report = f.set(&f.pg(), "ANewPassword0123456789").unwrap();
        assert_eq!(report.consumer, ConsumerChange::Rekeyed);
        assert!(f.accepts(b"ANewPassword0123456789"));
        assert_eq!(f.stored(&f.pg()).unwrap(), b"ANewPassword0123456789");
        let helper = helper_name(&f.ctx);
        assert_eq!(
            f.runtime.calls_to(Operation::RunContainer),
            std::slice::from_ref(&helper)
        );
        assert!(!block_on(f.runtime.container_exists(&helper)).unwrap());
        // The server was gone before the secret was stored.
        let calls = f.runtime.calls();
        let position = |op: Operation, target: &str| {
            calls
                .iter()
                .rposition(|c| c.operation == op && c.target.as_deref() == Some(target))
                .unwrap()
        };
        assert!(
            position(Operation::RemoveContainer, &helper)
                < position(Operation::CreateSecret, &f.pg())
        );
        // Run again with the same value: the database has it already.
        let again = f.set(&f.pg(), "ANewPassword0123456789").unwrap();
        assert_eq!(again.consumer, ConsumerChange::AlreadyHad);
    }

    #[test]
    fn a_database_not_yet_initialised_takes_the_secret_at_its_first_start() {
        let f = fixture(false);
        let report = f.set(&f.pg(), "FirstPassword0123456789").unwrap();
        assert_eq!(report.consumer, ConsumerChange::AtNextStart);
        assert_eq!(f.stored(&f.pg()).unwrap(), b"FirstPassword0123456789");
        assert!(f.runtime.calls_to(Operation::RunContainer).is_empty());
    }

    #[test]
    fn a_database_whose_service_is_starting_is_left_alone() {
        let f = fixture(true);
        let service = format!(
            "{}.service",
            f.ctx.deployment.config.postgres.container_name
        );
        f.systemd.set_state(&service, ActiveState::Activating);
        let err = f.set(&f.pg(), "ANewPassword0123456789").unwrap_err();
        assert_eq!(err.kind, crate::ErrorKind::Precondition, "{err}");
        assert!(f.stored(&f.pg()).is_none());
        assert!(f.runtime.calls_to(Operation::RunContainer).is_empty());
        assert!(f.accepts(b"old"));
    }

    #[test]
    fn a_running_valkey_restarts_with_the_value() {
        let f = fixture(false);
        let vk = f.ctx.deployment.config.valkey.clone();
        f.runtime.add_container(running(&vk.container_name));
        f.runtime
            .add_secret(&vk.password_secret, SecretValue::new("vkold"));
        let live = Arc::new(Mutex::new(b"vkold".to_vec()));
        let answers = live.clone();
        f.runtime.script_exec(&vk.container_name, move |spec| {
            if line(spec.stdin_bytes().unwrap_or_default()) == answers.lock().unwrap().as_slice() {
                ExecOutput::new(0, "PONG\n", "")
            } else {
                ExecOutput::new(
                    0,
                    "",
                    "AUTH failed: WRONGPASS invalid username-password pair\n",
                )
            }
        });
        // Valkey reads the secret when systemd restarts it.
        let store = f.runtime.clone();
        let secret = vk.password_secret.clone();
        let service = format!("{}.service", vk.container_name);
        let systemd = Arc::new(crate::rotate::tests::Hooked {
            inner: FakeManager::new(),
            on_restart: Box::new(move |unit| {
                if unit == service {
                    *live.lock().unwrap() = store.secret_value(&secret).unwrap().expose().to_vec();
                }
            }),
        });
        let ctx = Layer::new(
            f.ctx.deployment.clone(),
            systemd.clone(),
            Arc::new(f.runtime.clone()),
            Arc::new(f.runtime.clone()),
        );
        let report = block_on(set(
            &ctx,
            &vk.password_secret,
            &SecretValue::new("Kept-Valkey-Value_0123"),
        ))
        .unwrap();
        assert_eq!(report.consumer, ConsumerChange::Restarted);
        assert_eq!(
            systemd.inner.calls(),
            [format!("restart {}.service", vk.container_name)]
        );
        assert_eq!(
            f.stored(&vk.password_secret).unwrap(),
            b"Kept-Valkey-Value_0123"
        );
        assert!(
            f.stored(&rotate::pending_name(&vk.password_secret))
                .is_none()
        );
    }
}
