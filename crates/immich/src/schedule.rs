//! Scheduled backups: a systemd service that runs `immich-db backup` and a timer
//! that starts it, written for the deployment's scope and enabled by a link in
//! the unit directory's `timers.target.wants`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Serialize;

use crate::config::Deployment;
use crate::error::{Error, Result};
use crate::files::write_atomic;
use crate::layer::Layer;
use homelab_systemd::{ActiveState, Wait};

/// The first line of both units.
const HEADER: &str =
    "# Written by `immich-db backup --schedule`; remove with `immich-db backup --unschedule`.";

/// The backup service and timer of a deployment, and where they go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Units {
    /// The service that runs the backup.
    pub service: String,
    /// The timer that starts it.
    pub timer: String,
    /// The service's file.
    pub service_path: PathBuf,
    /// The timer's file.
    pub timer_path: PathBuf,
    /// The link that enables the timer (`timers.target.wants/<timer>`).
    pub wants_link: PathBuf,
}

pub(crate) fn units(d: &Deployment) -> Units {
    let base = format!("{}-backup", d.config.postgres.container_name);
    let dir = &d.backup.unit_dir;
    let timer = format!("{base}.timer");
    Units {
        service: format!("{base}.service"),
        service_path: dir.join(format!("{base}.service")),
        timer_path: dir.join(&timer),
        wants_link: dir.join("timers.target.wants").join(&timer),
        timer,
    }
}

/// The calendar expression of `daily`, `weekly` or anything systemd accepts,
/// checked with `systemd-analyze calendar`.
pub(crate) fn check_calendar(when: &str) -> Result<String> {
    let bad = |why: String| {
        Error::bad_input(format!("`--schedule {when}` is not a schedule: {why}"))
            .at("--schedule")
            .help("give daily, weekly or a systemd calendar expression such as \"*-*-* 03:30\" (see `man systemd.time`); nothing was changed")
    };
    let when = when.trim();
    if when.is_empty() {
        return Err(bad("it is empty".into()));
    }
    if let Some(c) = when
        .chars()
        .find(|c| c.is_control() || *c == '%' || *c == '\\')
    {
        return Err(bad(format!("it contains `{}`", c.escape_default())));
    }
    let out = Command::new("systemd-analyze")
        .args(["calendar", "--", when])
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(out) if out.status.success() => Ok(when.to_owned()),
        Ok(out) => Err(bad(String::from_utf8_lossy(&out.stderr).trim().to_owned())),
        // Without systemd-analyze, only the words everyone agrees on.
        Err(_) if ["daily", "weekly", "monthly", "hourly"].contains(&when) => Ok(when.to_owned()),
        Err(e) => Err(bad(format!("cannot run systemd-analyze to check it: {e}"))),
    }
}

/// A word for `ExecStart=`: quoted when needed; `%` and `$` escaped from
/// systemd's specifiers and variables.
fn exec_word(word: &str) -> String {
    let escaped = word.replace('%', "%%").replace('$', "$$");
    if escaped.is_empty() || escaped.contains([' ', '\t', '"', '\'', '\\', ';']) {
        format!("\"{}\"", escaped.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        escaped
    }
}

/// The service: one backup, the same as running `immich-db backup` by hand.
pub(crate) fn render_service(d: &Deployment, command: &[String]) -> String {
    let pg = &d.config.postgres;
    let words: Vec<String> = command.iter().map(|w| exec_word(w)).collect();
    format!(
        "{HEADER}\n[Unit]\nDescription=Back up the Immich database {db} ({container})\nAfter={container}.service\n\n[Service]\nType=oneshot\nExecStart={exec}\n",
        db = pg.database,
        container = pg.container_name,
        exec = words.join(" "),
    )
}

/// The timer: the service on the calendar, and a missed run caught up at boot.
pub(crate) fn render_timer(d: &Deployment, calendar: &str, service: &str) -> String {
    format!(
        "{HEADER}\n[Unit]\nDescription=Back up the Immich database {db} on a schedule\n\n[Timer]\nOnCalendar={calendar}\nPersistent=true\nUnit={service}\n\n[Install]\nWantedBy=timers.target\n",
        db = d.config.postgres.database,
    )
}

/// What is installed now.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct State {
    /// Whether the timer is installed.
    pub installed: bool,
    /// The timer's unit name.
    pub timer: String,
    /// Whether the timer is active.
    pub active: bool,
    /// The next run.
    pub next_run: Option<chrono::DateTime<chrono::Utc>>,
    /// The calendar expression in the timer file.
    pub calendar: Option<String>,
}

pub(crate) async fn state(ctx: &Layer) -> State {
    let u = units(&ctx.deployment);
    let installed = u.timer_path.exists();
    let calendar = std::fs::read_to_string(&u.timer_path).ok().and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("OnCalendar="))
            .map(str::to_owned)
    });
    let timer = ctx.systemd.unit(&u.timer).await.ok();
    State {
        installed,
        active: timer
            .as_ref()
            .is_some_and(|t| t.active == ActiveState::Active),
        next_run: timer.and_then(|t| t.next_elapse),
        calendar,
        timer: u.timer,
    }
}

fn write(path: &Path, text: &str) -> Result<()> {
    write_atomic(path, text.as_bytes())
        .map_err(|e| Error::failed(format!("cannot write {}: {e}", path.display())))
}

/// Writes the service and the timer, enables the timer and (re)starts it.
pub(crate) async fn install(
    ctx: &Layer,
    calendar: &str,
    command: &[String],
) -> Result<(Units, State)> {
    let d = &ctx.deployment;
    let u = units(d);
    write(&u.service_path, &render_service(d, command))?;
    write(&u.timer_path, &render_timer(d, calendar, &u.service))?;
    let wants = u.wants_link.parent().unwrap_or(&d.backup.unit_dir);
    std::fs::create_dir_all(wants)
        .map_err(|e| Error::failed(format!("cannot create {}: {e}", wants.display())))?;
    match std::fs::read_link(&u.wants_link) {
        Ok(target) if target == u.timer_path => {}
        Ok(_) | Err(_) => {
            let _ = std::fs::remove_file(&u.wants_link);
            std::os::unix::fs::symlink(&u.timer_path, &u.wants_link).map_err(|e| {
                Error::failed(format!("cannot create {}: {e}", u.wants_link.display()))
            })?;
        }
    }
    let sys = |e: homelab_systemd::Error| Error::failed(e.to_string());
    ctx.systemd.daemon_reload().await.map_err(sys)?;
    // A restart makes a changed calendar take effect at once.
    ctx.systemd
        .restart(std::slice::from_ref(&u.timer), Wait::Done)
        .await
        .map_err(sys)?;
    let state = state(ctx).await;
    Ok((u, state))
}

/// Stops the timer and removes both units; `false` when nothing was installed.
pub(crate) async fn remove(ctx: &Layer) -> Result<bool> {
    let d = &ctx.deployment;
    let u = units(d);
    let present = [&u.timer_path, &u.service_path, &u.wants_link]
        .iter()
        .any(|p| p.symlink_metadata().is_ok());
    // Not loaded means not running: nothing to stop.
    let _ = ctx
        .systemd
        .stop(&[u.timer.clone(), u.service.clone()])
        .await;
    for path in [&u.wants_link, &u.timer_path, &u.service_path] {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::failed(format!(
                    "cannot remove {}: {e}",
                    path.display()
                )));
            }
        }
    }
    // The enabling directory goes too when nothing else is in it.
    if let Some(wants) = u.wants_link.parent() {
        let _ = std::fs::remove_dir(wants);
    }
    if present {
        ctx.systemd
            .daemon_reload()
            .await
            .map_err(|e| Error::failed(e.to_string()))?;
    }
    let _ = ctx.systemd.reset_failed(&[u.timer, u.service]).await;
    Ok(present)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Loaded, validate};

    #[test]
    fn units_are_named_after_the_container_and_escape_the_command() {
        let d = validate(&Loaded::defaults()).unwrap();
        let u = units(&d);
        assert_eq!(u.service, "postgresql-immich-backup.service");
        assert_eq!(u.timer, "postgresql-immich-backup.timer");
        assert!(
            u.wants_link
                .ends_with("timers.target.wants/postgresql-immich-backup.timer")
        );
        let service = render_service(
            &d,
            &[
                "/opt/immich db/immich-db".into(),
                "--config".into(),
                "/etc/100%/c$x.toml".into(),
                "backup".into(),
            ],
        );
        assert!(
            service.contains(
                "ExecStart=\"/opt/immich db/immich-db\" --config /etc/100%%/c$$x.toml backup\n"
            ),
            "{service}"
        );
        assert!(service.contains("Type=oneshot"));
        let timer = render_timer(&d, "daily", &u.service);
        assert!(
            timer.contains("OnCalendar=daily\nPersistent=true\n"),
            "{timer}"
        );
        assert!(timer.contains("[Install]\nWantedBy=timers.target\n"));
    }

    #[test]
    fn schedules_that_would_break_the_unit_are_refused() {
        for bad in ["", "daily\nExecStart=/bin/sh", "50%", "a\\b"] {
            let err = check_calendar(bad).unwrap_err();
            assert_eq!(err.kind, crate::error::ErrorKind::BadInput, "{bad:?}");
        }
    }
}
