//! [`Runtime`]: the container runtime operations the tools need.

use std::pin::Pin;

use futures_util::Stream;
use homelab_secrets::SecretValue;

use crate::Result;
use crate::cidr::IpNet;
use crate::model::{
    ContainerEvent, ContainerInfo, ContainerStats, EventFilter, ExecOutput, ExecSpec, Health,
    HostInfo, ImageInfo, LogLine, NetworkInfo, NetworkSpec, RunSpec, SecretInfo, SecretOptions,
    SubnetOverlap, Version, find_overlaps,
};

/// A stream of container events; it ends when the connection ends.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<ContainerEvent>> + Send>>;

/// The container runtime: podman behind its service socket
/// ([`Podman`](crate::Podman)), or a recording fake for tests
/// ([`FakeRuntime`](crate::FakeRuntime)).
///
/// Names are podman's names (or IDs). A missing object is
/// [`Error::NotFound`](crate::Error::NotFound) from every operation except the
/// `*_exists` ones, which answer `false`.
#[async_trait::async_trait]
pub trait Runtime: Send + Sync {
    /// The versions of podman and of its API.
    async fn version(&self) -> Result<Version>;

    /// Podman's version, whether it is rootless, the cgroup version and the network
    /// backend.
    async fn host_info(&self) -> Result<HostInfo>;

    /// Creates a network; [`Error::AlreadyExists`](crate::Error::AlreadyExists)
    /// (and nothing changed) when the name is taken. The spec is
    /// [validated](NetworkSpec::validate) first.
    async fn create_network(&self, spec: &NetworkSpec) -> Result<NetworkInfo>;

    /// A network.
    async fn inspect_network(&self, name: &str) -> Result<NetworkInfo>;

    /// Whether a network exists.
    async fn network_exists(&self, name: &str) -> Result<bool>;

    /// All networks.
    async fn list_networks(&self) -> Result<Vec<NetworkInfo>>;

    /// Removes a network; [`Error::InUse`](crate::Error::InUse) (and nothing
    /// changed) while containers are on it.
    async fn remove_network(&self, name: &str) -> Result<()>;

    /// The existing networks whose subnets overlap `subnet`.
    async fn overlapping_networks(&self, subnet: &IpNet) -> Result<Vec<SubnetOverlap>> {
        let networks = self.list_networks().await?;
        Ok(find_overlaps(subnet, &networks))
    }

    /// A container: state, health, start time, restart count, networks and
    /// addresses.
    async fn inspect_container(&self, name: &str) -> Result<ContainerInfo>;

    /// Whether a container exists.
    async fn container_exists(&self, name: &str) -> Result<bool>;

    /// Runs the container's health check now and returns the result;
    /// [`Error::NoHealthCheck`](crate::Error::NoHealthCheck) when it has none.
    async fn run_health_check(&self, name: &str) -> Result<Health>;

    /// Runs a command in a running container and waits for it to end.
    ///
    /// With [standard input](ExecSpec::stdin), podman runs the command under the
    /// container's `sh`, which afterwards reads (with `cat`) whatever input the
    /// command left unread: podman drops the end of a command's output when it
    /// ends with input unread. A command that exited with 0 but whose output
    /// podman cut off anyway is
    /// [`Error::ExecOutputCut`](crate::Error::ExecOutputCut), never a short
    /// output.
    async fn exec(&self, name: &str, spec: &ExecSpec) -> Result<ExecOutput>;

    /// Runs a command in a running container as [`exec`](Runtime::exec) does, but
    /// streams: its standard output goes to `stdout` as it arrives, and its
    /// standard input, when `stdin` is given, is read from it as the command
    /// consumes it, so neither has to fit in memory (a `pg_dump`, a
    /// `pg_restore`). The returned [`ExecOutput`] has the exit code and standard
    /// error; its `stdout` is empty. With `stdin`, the spec's own
    /// [`ExecSpec::stdin`] bytes are not used, and the command runs under `sh`
    /// as for [`exec`](Runtime::exec) with standard input.
    ///
    /// A reader or writer that fails ends the call with
    /// [`Error::ExecStream`](crate::Error::ExecStream) (the command receives no
    /// more input).
    async fn exec_streaming(
        &self,
        name: &str,
        spec: &ExecSpec,
        stdin: Option<&mut (dyn tokio::io::AsyncRead + Unpin + Send)>,
        stdout: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    ) -> Result<ExecOutput>;

    /// Memory and CPU use of a running container, sampled once.
    async fn container_stats(&self, name: &str) -> Result<ContainerStats>;

    /// The last `lines` lines of a container's log (standard output and error,
    /// in order).
    async fn container_logs(&self, name: &str, lines: usize) -> Result<Vec<LogLine>>;

    /// Removes a container (stopping it first when `force`).
    async fn remove_container(&self, name: &str, force: bool) -> Result<()>;

    /// Creates a container as `spec` says and starts it, outside any systemd
    /// unit; [`Error::AlreadyExists`](crate::Error::AlreadyExists) (and
    /// nothing changed) when the name is taken. A container that cannot start
    /// is removed again. [`remove_container`](Self::remove_container) with
    /// `force` stops and removes it.
    async fn run_container(&self, spec: &RunSpec) -> Result<()>;

    /// Whether an image is in local storage.
    async fn image_exists(&self, reference: &str) -> Result<bool>;

    /// An image in local storage.
    async fn inspect_image(&self, reference: &str) -> Result<ImageInfo>;

    /// Pulls an image from its registry into local storage (a newer one
    /// replaces the tag's old one) and returns it as stored. The reference is
    /// [checked](crate::ImageRef) first:
    /// [`Error::InvalidImageReference`](crate::Error::InvalidImageReference)
    /// asks nothing of podman. A registry that cannot be reached or has no such
    /// image is [`Error::PullFailed`](crate::Error::PullFailed), naming the
    /// image. A reference without a registry is looked up in podman's search
    /// registries.
    async fn pull_image(&self, reference: &str) -> Result<ImageInfo>;

    /// Gives the image `image` (an ID or a name) the name `reference`
    /// (`REGISTRY/PATH:TAG`), which then no longer names the image it named
    /// before. The reference is [checked](crate::ImageRef) first; one pinned
    /// by digest cannot be a name.
    async fn tag_image(&self, image: &str, reference: &str) -> Result<()>;

    /// All secrets (metadata only).
    async fn list_secrets(&self) -> Result<Vec<SecretInfo>>;

    /// A secret's metadata.
    async fn inspect_secret(&self, name: &str) -> Result<SecretInfo>;

    /// Whether a secret exists.
    async fn secret_exists(&self, name: &str) -> Result<bool>;

    /// Removes a secret.
    async fn remove_secret(&self, name: &str) -> Result<()>;

    /// Creates a secret holding exactly `value`'s bytes (no quoting, no added
    /// newline). The value never appears in a process argument, a file or a log.
    async fn create_secret(
        &self,
        name: &str,
        value: &SecretValue,
        options: &SecretOptions,
    ) -> Result<SecretInfo>;

    /// A secret's value.
    async fn read_secret(&self, name: &str) -> Result<SecretValue>;

    /// Container events as they happen (and, with
    /// [`EventFilter::since`], past ones first).
    async fn events(&self, filter: &EventFilter) -> Result<EventStream>;
}
