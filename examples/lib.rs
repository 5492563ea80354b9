//! Runnable programs that show the `homelab-*` libraries to the author of another
//! homelab tool, and what they share. Each is in `examples/`, with what it needs
//! from the host in its first doc line; those that need no host run in CI.
//!
//! - `deploy_layer`: plan, deploy and verify the Immich database layer
//!   (`homelab-immich`). Needs a host with podman, a systemd user manager and
//!   a BTRFS pool.
//! - `render_container`: render a `.container` unit for any service and lint it
//!   with its network (`homelab-quadlet`). Needs no host.
//! - `nocow_dir`: make a NOCOW directory, find a file written before NOCOW was
//!   set, migrate it (`homelab-btrfs`). Needs a BTRFS filesystem.
//! - `secret`: create and check secrets against their consumer's policy, in
//!   memory or in Podman's store (`homelab-secrets`, `homelab-podman`). Needs no
//!   host without `--podman`.
//! - `immich_server_units`: the Immich server and machine-learning units as
//!   `homelab-immich` writes them from the layer's configuration, with the
//!   server's environment, linted together with the layer's units. Needs no
//!   host.
//! - `kubernetes_manifests`: the same layer for a Kubernetes cluster, as a
//!   CloudNativePG `Cluster`, Valkey and a README (`homelab-kube`). Needs no
//!   host.
//!
//! ```text
//! cargo run -p immich-db-examples --example render_container
//! ```

use homelab_immich::progress::{Event, Progress};

/// Progress printed as it comes, a line per event: what a program that drives
/// `homelab-immich` implements to show what is going on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Printed;

impl Progress for Printed {
    fn event(&self, event: Event<'_>) {
        match event {
            Event::Phase(what) => eprintln!("{what}"),
            Event::Done(what) => eprintln!("  {what}"),
            Event::Warning(what) => eprintln!("warning: {what}"),
            Event::Service { service, state } => eprintln!("  {service}: {state}"),
            Event::Ready { service, after } => {
                eprintln!("  {service}: ready after {:.1} s", after.as_secs_f64());
            }
            _ => {}
        }
    }
}
