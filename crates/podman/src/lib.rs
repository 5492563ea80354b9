//! The Podman container runtime behind an async trait, for homelab tools.
//!
//! [`Runtime`] has the operations a deployment tool needs: host information,
//! networks (and whether a subnet is free), containers (state, health, a health
//! check run now, commands, statistics, logs), images (present, inspected,
//! pulled), secrets and a stream of container events. [`ImageRef`] checks an
//! image reference before anything is pulled or written. [`Podman`] implements
//! it over podman's service socket;
//! [`FakeRuntime`] implements it in memory, recording every call, for fast tests
//! of code that uses a runtime. Both are also a
//! [`homelab_secrets::SecretStore`], so the secrets crate's `ensure` and `rotate`
//! work on podman's secret store.
//!
//! # Connecting
//!
//! [`Podman::connect`] tries, in order, the rootful socket `/run/podman/podman.sock`
//! (for root) and the user's `$XDG_RUNTIME_DIR/podman/podman.sock`, or the socket
//! given to [`ConnectOptions::socket`]. When none answers, it starts a private
//! `podman system service` for the life of the connection
//! ([`Fallback::StartPrivateService`], the default), or fails with an error that
//! names the command that starts the user's socket,
//! `systemctl --user start podman.socket` ([`Fallback::Fail`]). Connecting costs
//! one `_ping` per socket tried: podman's answer names its release and API
//! version, which the connection keeps, so [`Runtime::version`] asks nothing.
//!
//! # Commands in containers
//!
//! [`Runtime::exec`] and [`Runtime::exec_streaming`] never return a short
//! output as if it were whole. A command given standard input runs under the
//! container's `sh`, which reads what the command leaves unread: podman drops
//! the end of the output of a command that ends with input unread.
//!
//! # Secrets
//!
//! A secret is stored with exactly the bytes given: the value travels as the raw
//! body of the libpod request (never in a process argument, a file or a log),
//! working around podman-api 0.11, which stores it wrapped in JSON quotes.
//!
//! # Example
//!
//! Code written against [`Runtime`] runs unchanged on the fake:
//!
//! ```
//! use homelab_podman::{FakeRuntime, NetworkSpec, Runtime, Error, parse_cidr};
//!
//! /// Creates the network unless it exists; refuses a subnet another network uses.
//! async fn ensure_network(rt: &impl Runtime, spec: &NetworkSpec) -> Result<bool, Error> {
//!     if rt.network_exists(&spec.name).await? {
//!         return Ok(false);
//!     }
//!     if let Some(subnet) = &spec.subnet {
//!         if let Some(other) = rt.overlapping_networks(subnet).await?.first() {
//!             return Err(Error::InvalidNetwork {
//!                 network: spec.name.clone(),
//!                 field: "subnet",
//!                 reason: format!("{subnet} overlaps {} of network {}", other.subnet, other.network),
//!             });
//!         }
//!     }
//!     rt.create_network(spec).await?;
//!     Ok(true)
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let fake = FakeRuntime::new();
//! let photos = NetworkSpec::new("systemd-photos").subnet(parse_cidr("10.89.5.0/24")?);
//! assert!(ensure_network(&fake, &photos).await?);
//! assert!(!ensure_network(&fake, &photos).await?);
//! let clash = NetworkSpec::new("other").subnet(parse_cidr("10.89.0.0/16")?);
//! assert!(ensure_network(&fake, &clash).await.is_err());
//! # Ok::<(), Error>(())
//! # }).unwrap();
//! ```
//!
//! Against the real podman (this changes the host, so it is not run here):
//!
//! ```no_run
//! # async fn demo() -> Result<(), homelab_podman::Error> {
//! use homelab_podman::{Podman, Runtime, ExecSpec};
//!
//! let podman = Podman::connect().await?;
//! let health = podman.run_health_check("postgresql-immich").await?;
//! let out = podman
//!     .exec("postgresql-immich", &ExecSpec::new(["psql", "-U", "immich", "-Atc", "SELECT 1"]))
//!     .await?;
//! println!("{} / exit {}", health.status, out.exit_code);
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

mod cidr;
mod connect;
mod error;
mod exec;
mod fake;
mod http;
mod image;
mod model;
mod podman;
mod runtime;
mod store;
mod wire;

pub use cidr::{IpNet, parse_cidr};
pub use connect::{
    ConnectOptions, Fallback, PrivateService, ROOTFUL_SOCKET, candidate_sockets, default_sockets,
};
pub use error::{Error, ObjectKind, Result, START_SOCKET_COMMAND, SocketAttempt};
pub use fake::{Call, FakeRuntime, Operation};
pub use image::ImageRef;
pub use model::{
    CgroupVersion, ContainerEvent, ContainerInfo, ContainerNetwork, ContainerState, ContainerStats,
    ContainerStatus, EventFilter, EventKind, EventType, ExecOutput, ExecSpec, Health,
    HealthLogEntry, HealthStatus, HostInfo, ImageInfo, LogLine, LogStream, NetworkInfo,
    NetworkMember, NetworkSpec, NetworkSubnet, RunSpec, SecretInfo, SecretOptions, SubnetOverlap,
    Version, find_overlaps,
};
pub use podman::{MAX_SECRET_LEN, Podman};
pub use runtime::{EventStream, Runtime};
