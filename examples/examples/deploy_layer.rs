//! Needs a host with podman, a systemd user manager and a BTRFS pool (or the
//! test host of `scripts/provision`).
//!
//! The Immich database layer planned, deployed and verified from a program of
//! your own, through `homelab-immich`: the few lines below are all it takes;
//! the progress is printed as it comes.
//!
//! Run it with `cargo run -p immich-db-examples --example deploy_layer
//! [CONFIG]` (the configuration `immich-db config init` writes; without one,
//! `~/.config/immich-db/config.toml` or the defaults).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use homelab_immich::deploy::DeployOptions;
use homelab_immich::{Access, Layer, config};
use immich_db_examples::Printed;

async fn deploy(file: Option<PathBuf>) -> homelab_immich::Result<bool> {
    let deployment = config::load(file.as_deref())?.validate()?;
    let layer = Layer::connect(deployment, &Access::new())
        .await?
        .with_progress(Arc::new(Printed));
    let plan = layer.plan(&DeployOptions::new()).await?;
    println!("{}", plan.plan);
    let deployed = layer.deploy(&DeployOptions::new()).await?;
    println!("{} change(s)", deployed.done.len());
    let verification = layer.verify().await;
    println!("{verification}");
    Ok(verification.ok)
}

fn main() -> ExitCode {
    let file = std::env::args_os().nth(1).map(PathBuf::from);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(deploy(file)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}
