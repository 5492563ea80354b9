//! `destroy`: stops and removes the units, containers, network and backup
//! schedule; keeps the data directories, backups and secrets unless asked to
//! purge them.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use serde_json::json;

use crate::cli::DestroyArgs;
use crate::context::Context;
use crate::desired;
use crate::error::{Failure, Result};
use crate::lock;
use crate::output::Outcome;
use crate::schedule;

fn confirm(what: &str) -> Result<()> {
    if !std::io::stdin().is_terminal() {
        return Err(
            Failure::bad_input(format!("refusing to {what} without confirmation"))
                .help("pass --yes to confirm; nothing was changed"),
        );
    }
    eprint!("This will {what}. It cannot be undone. Type `yes` to go on: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(Failure::bad_input("not confirmed").help("nothing was changed"))
    }
}

pub(crate) async fn run(ctx: &Context, args: &DestroyArgs) -> Result<Outcome> {
    let d = &ctx.deployment;
    let ui = ctx.ui;
    let dirs = desired::dirs(d);
    if (args.purge_data || args.purge_secrets) && !args.yes {
        let mut what = Vec::new();
        if args.purge_data {
            what.push("delete the data directories (the databases and the ML cache)".to_owned());
        }
        if args.purge_secrets {
            what.push(format!(
                "delete the secrets {}",
                d.secret_names().join(", ")
            ));
        }
        confirm(&what.join(" and "))?;
    }
    let _lock = lock::acquire(&lock::lock_path(d, ctx.runtime_dir.as_deref()))?;
    let mut done: Vec<String> = Vec::new();
    let mut note = |what: String| {
        ui.note(format!("  {what}"));
        done.push(what);
    };

    let units = desired::unit_names(d);
    let containers: Vec<String> = units.iter().skip(1).map(|u| u.service.clone()).collect();
    let network_service = vec![d.network_service()];
    let running: Vec<&String> = containers
        .iter()
        .chain(&network_service)
        .filter(|unit| {
            ctx.systemd.show(unit, &["ActiveState"]).is_ok_and(|p| {
                p.get("ActiveState")
                    .is_some_and(|s| s != "inactive" && s != "failed")
            })
        })
        .collect();
    // Units that are not loaded cannot be stopped: nothing runs then.
    let _ = ctx.systemd.stop(&containers);
    let _ = ctx.systemd.stop(&network_service);
    for unit in running {
        note(format!("stopped {unit}"));
    }
    // The backup schedule runs pg_dump in a container that is going away; the
    // backups themselves stay.
    if schedule::remove(ctx)? {
        note("removed the backup schedule (the backups are kept)".into());
    }
    let mut removed_any = false;
    for unit in &units {
        let path = unit.path(d);
        match std::fs::remove_file(&path) {
            Ok(()) => {
                removed_any = true;
                note(format!("removed {}", path.display()));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(
                    Failure::failed(format!("cannot remove {}: {e}", path.display())).help(
                        "check the permissions of the unit directory, then run destroy again",
                    ),
                );
            }
        }
    }
    if removed_any {
        ctx.systemd
            .daemon_reload()
            .map_err(|e| Failure::failed(e.to_string()))?;
        note("reloaded systemd (daemon-reload)".into());
    }
    let mut all = containers.clone();
    all.extend(network_service);
    let _ = ctx.systemd.reset_failed(&all);
    for name in [
        &d.config.postgres.container_name,
        &d.config.valkey.container_name,
    ] {
        match ctx.runtime.remove_container(name, true).await {
            Ok(()) => note(format!("removed the container {name}")),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(ctx.podman_failure(&format!("removing the container {name}"), &e)),
        }
    }
    match ctx.runtime.remove_network(&d.podman_network()).await {
        Ok(()) => note(format!("removed the network {}", d.podman_network())),
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(ctx.podman_failure("removing the network", &e)),
    }
    if args.purge_data {
        for dir in &dirs {
            let result = if dir.key == "library_dir" {
                // The photo library goes only when it holds nothing.
                std::fs::remove_dir(&dir.path)
            } else {
                std::fs::remove_dir_all(&dir.path)
            };
            match result {
                Ok(()) => note(format!("deleted {}", dir.path.display())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) if dir.key == "library_dir" => {
                    ui.note(format!("  kept {} ({e})", dir.path.display()));
                }
                Err(e) => {
                    return Err(Failure::failed(format!(
                        "cannot delete {}: {e}",
                        dir.path.display()
                    )));
                }
            }
        }
    }
    if args.purge_secrets {
        for name in d.secret_names() {
            match ctx.secrets.remove(name).await {
                Ok(()) => note(format!("deleted the secret {name}")),
                Err(homelab_secrets::StoreError::NotFound { .. }) => {}
                Err(e) => {
                    return Err(Failure::failed(format!(
                        "cannot delete the secret {name}: {e}"
                    )));
                }
            }
        }
    }
    let mut human = if done.is_empty() {
        "Nothing to remove.".to_owned()
    } else {
        format!("destroy: done ({} step(s))", done.len())
    };
    if !args.purge_data && dirs.iter().any(|dir| dir.path.exists()) {
        human.push_str("\nkept the data directories (use --purge-data to delete them)");
    }
    if !args.purge_secrets {
        let mut kept = false;
        for name in d.secret_names() {
            kept |= ctx.secrets.exists(name).await.unwrap_or(true);
        }
        if kept {
            human.push_str("\nkept the secrets (use --purge-secrets to delete them)");
        }
    }
    Outcome::ok(json!({"ok": true, "done": done}), human)
}
