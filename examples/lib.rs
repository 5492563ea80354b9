//! Runnable programs that use the homelab-* libraries: see `examples/`.
