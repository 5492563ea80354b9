//! Needs no host.
//!
//! Render Immich's database layer for a Kubernetes cluster with `homelab-kube`:
//! a CloudNativePG `Cluster`, Valkey with its volume and Service, and a README
//! that says how to create the Secrets from the Podman host's, apply the files
//! and point Immich's Helm chart at them. No secret value is written.
//!
//! Without arguments it prints the files; with a directory it writes them there
//! (files written earlier by immich-db are replaced, any other file is left
//! alone and stops it).
//!
//! `cargo run -p immich-db-examples --example kubernetes_manifests [DIR]`

use std::path::PathBuf;
use std::process::ExitCode;

use homelab_kube::{DatabaseLayer, Secrets, WriteOptions};

fn run() -> Result<(), homelab_kube::Error> {
    let mut layer = DatabaseLayer::default();
    layer.namespace = "photos".into();
    layer.postgres.storage_size = "20Gi".into();
    let rendered = layer.render(Secrets::Referenced)?;
    for note in rendered.notes() {
        eprintln!("note: {note}");
    }
    match std::env::args_os().nth(1).map(PathBuf::from) {
        Some(dir) => {
            let report = rendered.write_to(&dir, &WriteOptions::new())?;
            for file in &report.written {
                println!("wrote {} (mode {:o})", file.path.display(), file.mode);
            }
            for path in &report.left_in_place {
                println!("left {} from an earlier render", path.display());
            }
        }
        None => {
            for file in rendered.files() {
                println!("==> {} <==\n{}", file.name(), file.content());
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
