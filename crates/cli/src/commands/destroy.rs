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
    // Every step is tried, also after one failed: what could not be removed is
    // listed, and running destroy again finishes the job.
    let mut steps = Steps::new(ui);

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
        steps.done(format!("stopped {unit}"));
    }
    // The backup schedule runs pg_dump in a container that is going away; the
    // backups themselves stay.
    match schedule::remove(ctx) {
        Ok(true) => steps.done("removed the backup schedule (the backups are kept)".into()),
        Ok(false) => {}
        Err(e) => steps.failed("remove the backup schedule", &e.what),
    }
    let mut removed_any = false;
    for unit in &units {
        let path = unit.path(d);
        match std::fs::remove_file(&path) {
            Ok(()) => {
                removed_any = true;
                steps.done(format!("removed {}", path.display()));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => steps.failed(&format!("remove {}", path.display()), &e.to_string()),
        }
    }
    if removed_any {
        match ctx.systemd.daemon_reload() {
            Ok(()) => steps.done("reloaded systemd (daemon-reload)".into()),
            Err(e) => steps.failed("reload systemd", &e.to_string()),
        }
    }
    let mut all = containers.clone();
    all.extend(network_service);
    let _ = ctx.systemd.reset_failed(&all);
    for name in [
        &d.config.postgres.container_name,
        &d.config.valkey.container_name,
    ] {
        match ctx.runtime.remove_container(name, true).await {
            Ok(()) => steps.done(format!("removed the container {name}")),
            Err(e) if e.is_not_found() => {}
            Err(e) => steps.failed(&format!("remove the container {name}"), &e.to_string()),
        }
    }
    match ctx.runtime.remove_network(&d.podman_network()).await {
        Ok(()) => steps.done(format!("removed the network {}", d.podman_network())),
        Err(e) if e.is_not_found() => {}
        Err(e) => steps.failed(
            &format!("remove the network {}", d.podman_network()),
            &e.to_string(),
        ),
    }
    if args.purge_data {
        for dir in &dirs {
            purge_dir(ctx, dir, &mut steps).await;
        }
    }
    if args.purge_secrets {
        for name in d.secret_names() {
            match ctx.secrets.remove(name).await {
                Ok(()) => steps.done(format!("deleted the secret {name}")),
                Err(homelab_secrets::StoreError::NotFound { .. }) => {}
                Err(e) => steps.failed(&format!("delete the secret {name}"), &e.to_string()),
            }
        }
    }
    let Steps { done, failed, .. } = steps;
    if !failed.is_empty() {
        let mut failure = Failure::failed(format!(
            "destroy could not {}",
            failed
                .iter()
                .map(|f| format!("{} ({})", f.what, f.why))
                .collect::<Vec<_>>()
                .join("; ")
        ))
        .help("fix the cause above, then run the same destroy again: it finishes the job");
        failure.done = done;
        return Err(failure);
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

/// A step that failed: what it was to do, and why it could not.
#[derive(Debug)]
struct Failed {
    what: String,
    why: String,
}

/// What destroy did, and what it could not do.
struct Steps {
    ui: crate::output::Ui,
    done: Vec<String>,
    failed: Vec<Failed>,
}

impl Steps {
    fn new(ui: crate::output::Ui) -> Self {
        Self {
            ui,
            done: Vec::new(),
            failed: Vec::new(),
        }
    }

    fn done(&mut self, what: String) {
        self.ui.note(format!("  {what}"));
        self.done.push(what);
    }

    fn failed(&mut self, what: &str, why: &str) {
        self.ui.note(format!("  could not {what}: {why}"));
        self.failed.push(Failed {
            what: what.to_owned(),
            why: why.trim().to_owned(),
        });
    }
}

/// Deletes a data directory (the photo library only when it is empty).
///
/// With rootless podman, what a container wrote as one of the user's
/// subordinate IDs (an earlier deploy without `UserNS=keep-id`) is removed in
/// the user's namespace, where the user owns it.
async fn purge_dir(ctx: &Context, dir: &desired::Dir, steps: &mut Steps) {
    let library = dir.key == "library_dir";
    let result = if library {
        std::fs::remove_dir(&dir.path)
    } else {
        std::fs::remove_dir_all(&dir.path)
    };
    match result {
        Ok(()) => steps.done(format!("deleted {}", dir.path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) if library => {
            ctx.ui.note(format!("  kept {} ({e})", dir.path.display()));
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied && ctx.deployment.rootless => {
            match crate::userns::remove_dir_all(&dir.path).await {
                Ok(()) => steps.done(format!(
                    "deleted {} (in the user namespace of rootless podman)",
                    dir.path.display()
                )),
                Err(why) => steps.failed(&format!("delete {}", dir.path.display()), &why),
            }
        }
        Err(e) => steps.failed(&format!("delete {}", dir.path.display()), &e.to_string()),
    }
}
