//! The real manager, through `systemctl`.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use async_trait::async_trait;

use crate::unit::PROPERTIES;
use crate::{Error, JobWatch, Manager, Result, Scope, UnitState, Wait};

/// A manager reached through `systemctl` (with `--user` for the user scope).
///
/// `systemctl --user` finds the user's manager through `$XDG_RUNTIME_DIR`; a
/// shell reached through `su` or `sudo` often lacks it, so it is given
/// explicitly: the one in the environment, else `/run/user/UID`.
#[derive(Debug, Clone)]
pub struct Systemctl {
    scope: Scope,
    runtime_dir: Option<PathBuf>,
}

impl Systemctl {
    /// The manager of `scope`, for the user running this process.
    pub fn new(scope: Scope) -> Self {
        let runtime_dir = match scope {
            Scope::User => Some(
                std::env::var_os("XDG_RUNTIME_DIR")
                    .filter(|v| !v.is_empty())
                    .map_or_else(
                        || PathBuf::from(format!("/run/user/{}", current_uid())),
                        PathBuf::from,
                    ),
            ),
            Scope::System => None,
        };
        Self { scope, runtime_dir }
    }

    /// The same manager, reached through another runtime directory.
    #[must_use]
    pub fn with_runtime_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        if self.scope == Scope::User {
            self.runtime_dir = Some(dir.into());
        }
        self
    }

    /// The user manager's runtime directory (`None` for the system scope).
    pub fn runtime_dir(&self) -> Option<&Path> {
        self.runtime_dir.as_deref()
    }

    fn command(&self) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new("systemctl");
        if self.scope == Scope::User {
            cmd.arg("--user");
        }
        if let Some(dir) = &self.runtime_dir {
            cmd.env("XDG_RUNTIME_DIR", dir);
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    fn display(&self, args: &[&str]) -> String {
        format!("systemctl{} {}", self.scope.flag(), args.join(" "))
    }

    async fn run(&self, args: &[&str]) -> Result<String> {
        let command = self.display(args);
        let span = tracing::debug_span!("systemctl", command = %command);
        let _enter = span.enter();
        let started = std::time::Instant::now();
        let out = self
            .command()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .await
            .map_err(|source| Error::Spawn {
                command: command.clone(),
                source,
            })?;
        tracing::debug!(elapsed_ms = started.elapsed().as_millis(), status = %out.status, "systemctl");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
            Err(Error::Refused {
                command,
                detail: if stderr.is_empty() {
                    out.status.to_string()
                } else {
                    stderr
                },
            })
        }
    }

    async fn with_units(&self, verb: &[&str], units: &[String]) -> Result<()> {
        if units.is_empty() {
            return Ok(());
        }
        let mut args: Vec<&str> = verb.to_vec();
        args.push("--");
        args.extend(units.iter().map(String::as_str));
        self.run(&args).await.map(drop)
    }
}

fn current_uid() -> u32 {
    // /proc/self is ours: its owner is our UID.
    std::fs::metadata("/proc/self").map_or(0, |m| std::os::unix::fs::MetadataExt::uid(&m))
}

#[async_trait]
impl Manager for Systemctl {
    fn scope(&self) -> Scope {
        self.scope
    }

    async fn reachable(&self) -> Result<()> {
        let command = self.display(&["is-system-running"]);
        // Not `run`: the state is on standard output whatever the exit status.
        let out = self
            .command()
            .arg("is-system-running")
            .output()
            .await
            .map_err(|source| Error::Spawn {
                command: command.clone(),
                source,
            })?;
        manager_answer(
            &String::from_utf8_lossy(&out.stdout),
            &String::from_utf8_lossy(&out.stderr),
        )
        .map_err(|detail| Error::Refused { command, detail })
    }

    async fn daemon_reload(&self) -> Result<()> {
        self.run(&["daemon-reload"]).await.map(drop)
    }

    async fn start(&self, units: &[String], wait: Wait) -> Result<()> {
        match wait {
            Wait::Done => self.with_units(&["start"], units).await,
            Wait::Queued => self.with_units(&["start", "--no-block"], units).await,
        }
    }

    async fn restart(&self, units: &[String], wait: Wait) -> Result<()> {
        match wait {
            Wait::Done => self.with_units(&["restart"], units).await,
            Wait::Queued => self.with_units(&["restart", "--no-block"], units).await,
        }
    }

    async fn stop(&self, units: &[String]) -> Result<()> {
        self.with_units(&["stop"], units).await
    }

    async fn reset_failed(&self, units: &[String]) -> Result<()> {
        // Fails for units that are not loaded: nothing to forget then.
        let _ = self.with_units(&["reset-failed"], units).await;
        Ok(())
    }

    async fn units(&self, units: &[&str]) -> Result<Vec<UnitState>> {
        if units.is_empty() {
            return Ok(Vec::new());
        }
        let props = PROPERTIES.join(",");
        let mut args = vec!["show", "--timestamp=us+utc", "-p", &props, "--"];
        args.extend(units);
        let out = self.run(&args).await?;
        let blocks: Vec<&str> = out
            .split("\n\n")
            .filter(|block| !block.trim().is_empty())
            .collect();
        if blocks.len() != units.len() {
            return Err(Error::Unreadable {
                command: self.display(&args),
                detail: format!(
                    "it answered for {} unit(s) instead of {}",
                    blocks.len(),
                    units.len()
                ),
            });
        }
        Ok(units
            .iter()
            .zip(blocks)
            .map(|(unit, block)| UnitState::from_show(unit, block))
            .collect())
    }

    fn watch_job(&self, unit: &str) -> JobWatch {
        self.command()
            .args(["start", "--no-ask-password", "--", unit])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_or_else(|_| JobWatch::none(), JobWatch::of)
    }
}

/// Whether `systemctl is-system-running` reached a manager, from what it
/// printed. It exits non-zero for every state but "running" ("degraded",
/// "starting" still answer) and prints the state all the same: "offline" where
/// systemd is not PID 1, nothing (and why on standard error) when it cannot
/// connect.
fn manager_answer(stdout: &str, stderr: &str) -> std::result::Result<(), String> {
    match stdout.trim() {
        state @ ("offline" | "unknown") => Err(format!("the manager is {state}")),
        "" if stderr.trim().is_empty() => Err("no answer".into()),
        "" => Err(stderr.trim().to_owned()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::manager_answer;

    #[test]
    fn a_manager_answers_in_any_state_but_offline() {
        for state in ["running", "degraded", "starting", "maintenance"] {
            assert_eq!(manager_answer(&format!("{state}\n"), ""), Ok(()), "{state}");
        }
        assert_eq!(
            manager_answer("offline\n", ""),
            Err("the manager is offline".into())
        );
        assert!(
            manager_answer("", "Failed to connect to bus: No such file or directory\n")
                .unwrap_err()
                .contains("Failed to connect")
        );
        assert_eq!(manager_answer("", ""), Err("no answer".into()));
    }
}
