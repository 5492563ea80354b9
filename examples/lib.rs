//! Runnable programs that show the `homelab-*` libraries to the author of another
//! homelab tool. Each is in `examples/`, with what it needs from the host in its
//! first doc line; those that need no host run in CI.
//!
//! - `render_container`: render a `.container` unit for any service and lint it
//!   with its network (`homelab-quadlet`). Needs no host.
//! - `nocow_dir`: make a NOCOW directory, find a file written before NOCOW was
//!   set, migrate it (`homelab-btrfs`). Needs a BTRFS filesystem.
//! - `secret`: create and check secrets against their consumer's policy, in
//!   memory or in Podman's store (`homelab-secrets`, `homelab-podman`). Needs no
//!   host without `--podman`.
//! - `immich_server_units`: the Immich server and machine-learning units that
//!   depend on the database layer, linted together with its units. Needs no
//!   host.
//! - `kubernetes_manifests`: the same layer for a Kubernetes cluster, as a
//!   CloudNativePG `Cluster`, Valkey and a README (`homelab-kube`). Needs no
//!   host.
//!
//! ```text
//! cargo run -p immich-db-examples --example render_container
//! ```
