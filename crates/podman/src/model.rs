//! What the runtime reports and what it is asked to create: plain data, independent
//! of how podman encodes it.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use zeroize::Zeroizing;

use crate::Error;
use crate::cidr::{IpNet, has_host_bits, overlaps};

/// The podman version a service runs, and the API version it speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Version {
    /// Podman's version, such as `5.4.2`.
    pub version: String,
    /// The libpod API version, such as `5.4.2`.
    pub api_version: String,
}

impl Version {
    /// A podman `version` speaking API `api_version`.
    pub fn new(version: impl Into<String>, api_version: impl Into<String>) -> Self {
        Self {
            version: version.into(),
            api_version: api_version.into(),
        }
    }

    /// The major, minor and patch numbers of [`Version::version`], when it
    /// starts with them (`5.4.2-dev` gives `(5, 4, 2)`).
    pub fn numbers(&self) -> Option<(u32, u32, u32)> {
        let mut parts = self.version.split(['.', '-', '+', '~']);
        let mut next = || parts.next().and_then(|p| p.parse::<u32>().ok());
        Some((next()?, next().unwrap_or(0), next().unwrap_or(0)))
    }

    /// Whether this version is at least `major.minor`.
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        self.numbers()
            .is_some_and(|(ma, mi, _)| (ma, mi) >= (major, minor))
    }
}

/// The cgroup hierarchy of the host.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupVersion {
    /// Legacy or hybrid cgroups (v1 controllers).
    V1,
    /// The unified hierarchy.
    V2,
    /// A value this library does not know.
    Unknown(String),
}

impl CgroupVersion {
    pub(crate) fn parse(text: &str) -> Self {
        match text {
            "v1" | "1" => Self::V1,
            "v2" | "2" => Self::V2,
            other => Self::Unknown(other.to_owned()),
        }
    }
}

impl fmt::Display for CgroupVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::V1 => f.write_str("v1"),
            Self::V2 => f.write_str("v2"),
            Self::Unknown(v) => f.write_str(v),
        }
    }
}

/// What the podman service says about itself and its host.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HostInfo {
    /// The versions.
    pub version: Version,
    /// Whether podman runs rootless (as an ordinary user).
    pub rootless: bool,
    /// The cgroup version of the host.
    pub cgroup_version: CgroupVersion,
    /// The cgroup manager (`systemd` or `cgroupfs`).
    pub cgroup_manager: String,
    /// The network backend (`netavark`, or the older `cni`).
    pub network_backend: String,
    /// The OCI runtime's name (`crun`, `runc`).
    pub oci_runtime: String,
    /// The kernel release.
    pub kernel: String,
}

impl HostInfo {
    /// A host running podman `version`, with nothing else known yet: not
    /// rootless, an unknown cgroup version and empty names; the fields are
    /// public to fill in.
    pub fn new(version: Version) -> Self {
        Self {
            version,
            rootless: false,
            cgroup_version: CgroupVersion::Unknown(String::new()),
            cgroup_manager: String::new(),
            network_backend: String::new(),
            oci_runtime: String::new(),
            kernel: String::new(),
        }
    }
}

/// A podman network to create.
///
/// ```
/// use homelab_podman::{NetworkSpec, parse_cidr};
///
/// let spec = NetworkSpec::new("systemd-photos")
///     .subnet(parse_cidr("10.89.5.0/24")?)
///     .gateway("10.89.5.1".parse()?)
///     .label("app", "immich");
/// spec.validate()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetworkSpec {
    /// The network's name.
    pub name: String,
    /// Its subnet; podman picks a free one when absent.
    pub subnet: Option<IpNet>,
    /// Its gateway; the subnet's first host when absent.
    pub gateway: Option<IpAddr>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// DNS servers that containers on the network use instead of the host's.
    pub dns: Vec<IpAddr>,
    /// Whether the network has no route outside (containers on it reach only
    /// each other).
    pub internal: bool,
}

impl NetworkSpec {
    /// A network with this name and podman's defaults for everything else.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// Sets the subnet.
    #[must_use]
    pub fn subnet(mut self, subnet: IpNet) -> Self {
        self.subnet = Some(subnet);
        self
    }

    /// Sets the gateway.
    #[must_use]
    pub fn gateway(mut self, gateway: IpAddr) -> Self {
        self.gateway = Some(gateway);
        self
    }

    /// Adds a label.
    #[must_use]
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Adds a DNS server.
    #[must_use]
    pub fn dns(mut self, server: IpAddr) -> Self {
        self.dns.push(server);
        self
    }

    /// Makes the network internal (or not).
    #[must_use]
    pub fn internal(mut self, internal: bool) -> Self {
        self.internal = internal;
        self
    }

    /// Checks what podman would refuse, with a message that says how to fix it:
    /// the name, a subnet written with host bits, a gateway without a subnet or
    /// outside it or equal to the subnet's own address.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |field, reason: String| Error::InvalidNetwork {
            network: self.name.clone(),
            field,
            reason,
        };
        validate_name(&self.name).map_err(|reason| invalid("name", reason))?;
        if let Some(subnet) = &self.subnet
            && has_host_bits(subnet)
        {
            return Err(invalid(
                "subnet",
                format!("{subnet} has host bits set; write it as {}", subnet.trunc()),
            ));
        }
        if let Some(gateway) = self.gateway {
            let Some(subnet) = &self.subnet else {
                return Err(invalid(
                    "gateway",
                    format!("{gateway} is given without a subnet; give the subnet too"),
                ));
            };
            if !subnet.contains(&gateway) {
                return Err(invalid(
                    "gateway",
                    format!("{gateway} is outside the subnet {subnet}"),
                ));
            }
            if gateway == subnet.network() && subnet.prefix_len() < subnet.max_prefix_len() {
                return Err(invalid(
                    "gateway",
                    format!(
                        "{gateway} is the subnet's own address; use a host address such as the next one"
                    ),
                ));
            }
        }
        for key in self.labels.keys() {
            if key.is_empty() || key.contains('=') {
                return Err(invalid(
                    "labels",
                    format!("label key {key:?} must be non-empty and contain no `=`"),
                ));
            }
        }
        Ok(())
    }
}

/// Checks a network or container name as podman does: a letter or digit, then
/// letters, digits, `_`, `.` and `-`.
pub(crate) fn validate_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    match chars.next() {
        None => return Err("the name is empty".into()),
        Some(c) if !c.is_ascii_alphanumeric() => {
            return Err(format!("{name:?} must start with a letter or digit"));
        }
        Some(_) => {}
    }
    if let Some(bad) = chars.find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(format!(
            "{name:?} contains {bad:?}; use only letters, digits, `_`, `.` and `-`"
        ));
    }
    Ok(())
}

/// One subnet of a network.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NetworkSubnet {
    /// The subnet.
    pub subnet: IpNet,
    /// Its gateway, when it has one.
    pub gateway: Option<IpAddr>,
}

impl NetworkSubnet {
    /// A subnet with its gateway, when it has one.
    pub fn new(subnet: IpNet, gateway: Option<IpAddr>) -> Self {
        Self { subnet, gateway }
    }
}

/// A container attached to a network, as the network reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NetworkMember {
    /// The container's name.
    pub name: String,
    /// Its addresses on the network, with their prefix lengths.
    pub addresses: Vec<IpNet>,
}

impl NetworkMember {
    /// A container on the network with these addresses.
    pub fn new(name: impl Into<String>, addresses: Vec<IpNet>) -> Self {
        Self {
            name: name.into(),
            addresses,
        }
    }
}

/// A podman network as it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NetworkInfo {
    /// The name.
    pub name: String,
    /// The ID.
    pub id: String,
    /// The driver (`bridge`, `macvlan`, ...).
    pub driver: String,
    /// The bridge interface on the host, when there is one.
    pub interface: Option<String>,
    /// The subnets.
    pub subnets: Vec<NetworkSubnet>,
    /// The DNS servers containers use, when set for this network.
    pub dns_servers: Vec<IpAddr>,
    /// Whether podman's DNS answers for container names on this network.
    pub dns_enabled: bool,
    /// Whether the network is internal.
    pub internal: bool,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// The containers on the network now, by container ID.
    pub containers: BTreeMap<String, NetworkMember>,
}

impl NetworkInfo {
    /// A network of podman's default driver (`bridge`), with this name and ID
    /// and nothing else yet: no subnets, no DNS, no labels, no containers.
    pub fn new(name: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            id: id.into(),
            driver: "bridge".to_owned(),
            interface: None,
            subnets: Vec::new(),
            dns_servers: Vec::new(),
            dns_enabled: false,
            internal: false,
            labels: BTreeMap::new(),
            containers: BTreeMap::new(),
        }
    }
}

/// An existing network whose subnet overlaps a subnet asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubnetOverlap {
    /// The existing network.
    pub network: String,
    /// Its subnet that overlaps.
    pub subnet: IpNet,
}

impl SubnetOverlap {
    /// The subnet `subnet` of the network `network`.
    pub fn new(network: impl Into<String>, subnet: IpNet) -> Self {
        Self {
            network: network.into(),
            subnet,
        }
    }
}

/// The networks among `networks` whose subnets overlap `subnet` (each subnet once).
pub fn find_overlaps<'a>(
    subnet: &IpNet,
    networks: impl IntoIterator<Item = &'a NetworkInfo>,
) -> Vec<SubnetOverlap> {
    networks
        .into_iter()
        .flat_map(|n| {
            n.subnets
                .iter()
                .filter(|s| overlaps(&s.subnet, subnet))
                .map(|s| SubnetOverlap {
                    network: n.name.clone(),
                    subnet: s.subnet,
                })
        })
        .collect()
}

/// The state a container is in.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerStatus {
    /// Created, never started.
    Created,
    /// Set up, about to start.
    Initialized,
    /// Running.
    Running,
    /// Paused.
    Paused,
    /// Being stopped.
    Stopping,
    /// Stopped (its processes have exited).
    Stopped,
    /// Exited.
    Exited,
    /// Being removed.
    Removing,
    /// A state this library does not know.
    Unknown(String),
}

impl ContainerStatus {
    /// Parses podman's name for the state.
    pub fn parse(text: &str) -> Self {
        match text {
            "created" | "configured" => Self::Created,
            "initialized" => Self::Initialized,
            "running" => Self::Running,
            "paused" => Self::Paused,
            "stopping" => Self::Stopping,
            "stopped" => Self::Stopped,
            "exited" => Self::Exited,
            "removing" => Self::Removing,
            other => Self::Unknown(other.to_owned()),
        }
    }
}

impl fmt::Display for ContainerStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Created => "created",
            Self::Initialized => "initialized",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::Exited => "exited",
            Self::Removing => "removing",
            Self::Unknown(s) => s,
        })
    }
}

/// The result of a container's health check.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HealthStatus {
    /// Not yet known: the start period has not passed, or no check has run yet.
    Starting,
    /// The last checks passed.
    Healthy,
    /// The check failed as many times in a row as it may.
    Unhealthy,
    /// A value this library does not know.
    Unknown(String),
}

impl HealthStatus {
    /// Parses podman's name for the status.
    pub fn parse(text: &str) -> Self {
        match text {
            "starting" => Self::Starting,
            "healthy" => Self::Healthy,
            "unhealthy" => Self::Unhealthy,
            other => Self::Unknown(other.to_owned()),
        }
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Starting => "starting",
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
            Self::Unknown(s) => s,
        })
    }
}

/// One run of a health check.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HealthLogEntry {
    /// When it started.
    pub start: Option<SystemTime>,
    /// When it ended.
    pub end: Option<SystemTime>,
    /// The check's exit code (0 passed).
    pub exit_code: i32,
    /// Its output.
    pub output: String,
}

impl HealthLogEntry {
    /// A run that exited with `exit_code` and wrote `output`, at times not known.
    pub fn new(exit_code: i32, output: impl Into<String>) -> Self {
        Self {
            start: None,
            end: None,
            exit_code,
            output: output.into(),
        }
    }
}

/// A container's health.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Health {
    /// The status.
    pub status: HealthStatus,
    /// How many checks in a row have failed.
    pub failing_streak: u32,
    /// The latest runs, oldest first (empty when the answer carried none).
    pub log: Vec<HealthLogEntry>,
}

impl Health {
    /// A health of this status, with no failing streak and no runs logged.
    pub fn new(status: HealthStatus) -> Self {
        Self {
            status,
            failing_streak: 0,
            log: Vec::new(),
        }
    }
}

/// A container's attachment to one network.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ContainerNetwork {
    /// Its `IPv4` address there.
    pub ip: Option<IpAddr>,
    /// The prefix length of that address.
    pub prefix_len: u8,
    /// The gateway.
    pub gateway: Option<IpAddr>,
    /// Its MAC address.
    pub mac: Option<String>,
    /// Its DNS aliases on the network.
    pub aliases: Vec<String>,
}

impl ContainerNetwork {
    /// An attachment with this address and prefix length, and nothing else
    /// known (no gateway, MAC address or aliases).
    pub fn new(ip: IpAddr, prefix_len: u8) -> Self {
        Self {
            ip: Some(ip),
            prefix_len,
            gateway: None,
            mac: None,
            aliases: Vec::new(),
        }
    }
}

/// What a container is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ContainerState {
    /// The state.
    pub status: ContainerStatus,
    /// Whether it runs.
    pub running: bool,
    /// The PID of its main process on the host, while it runs.
    pub pid: Option<u32>,
    /// The exit code of its last run.
    pub exit_code: i32,
    /// When it last started (`None` if it never did).
    pub started_at: Option<SystemTime>,
    /// When it last stopped (`None` if it never did).
    pub finished_at: Option<SystemTime>,
    /// Whether the kernel's OOM killer ended it.
    pub oom_killed: bool,
    /// The error that stopped it, if any.
    pub error: Option<String>,
}

impl ContainerState {
    /// A container in this state (running exactly when the state is
    /// [`ContainerStatus::Running`]), with exit code 0 and nothing else known.
    pub fn new(status: ContainerStatus) -> Self {
        Self {
            running: status == ContainerStatus::Running,
            status,
            pid: None,
            exit_code: 0,
            started_at: None,
            finished_at: None,
            oom_killed: false,
            error: None,
        }
    }
}

/// A container as it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ContainerInfo {
    /// The ID.
    pub id: String,
    /// The name.
    pub name: String,
    /// The image it was created from, as named then.
    pub image: String,
    /// The ID of the image it runs (empty when unknown).
    pub image_id: String,
    /// Its state.
    pub state: ContainerState,
    /// Its health, when it has a health check.
    pub health: Option<Health>,
    /// How many times podman restarted it under its restart policy. A Quadlet
    /// unit's restarts are done by systemd and replace the container: see the
    /// unit's `NRestarts` for those.
    pub restart_count: u32,
    /// Its networks, by network name.
    pub networks: BTreeMap<String, ContainerNetwork>,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its cgroup path (relative to the cgroup mount), when podman reports one.
    pub cgroup_path: Option<String>,
}

impl ContainerInfo {
    /// A container with this ID, name, image and state, and nothing else yet:
    /// no health check, no restarts, networks, labels or cgroup.
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        image: impl Into<String>,
        state: ContainerState,
    ) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            image: image.into(),
            image_id: String::new(),
            state,
            health: None,
            restart_count: 0,
            networks: BTreeMap::new(),
            labels: BTreeMap::new(),
            cgroup_path: None,
        }
    }

    /// How long it has been running at `now`, while it runs.
    pub fn uptime(&self, now: SystemTime) -> Option<Duration> {
        if !self.state.running {
            return None;
        }
        now.duration_since(self.state.started_at?).ok()
    }

    /// Its health status, when it has a health check.
    pub fn health_status(&self) -> Option<&HealthStatus> {
        self.health.as_ref().map(|h| &h.status)
    }
}

/// A container to create and start outside any systemd unit: a short-lived
/// helper, such as a server started once on existing data. It has no network
/// (only its own loopback), and the image's entrypoint and command unless
/// [`command`](Self::command) gives another.
///
/// ```
/// use homelab_podman::RunSpec;
///
/// let spec = RunSpec::new("db-check", "docker.io/library/postgres:17")
///     .bind("/srv/db", "/var/lib/postgresql/data")
///     .keep_id(true);
/// assert_eq!(spec.binds()[0].1, "/var/lib/postgresql/data");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSpec {
    name: String,
    image: String,
    command: Vec<String>,
    binds: Vec<(String, String)>,
    keep_id: bool,
}

impl RunSpec {
    /// The container `name`, from `image`.
    pub fn new(name: impl Into<String>, image: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            image: image.into(),
            ..Self::default()
        }
    }

    /// Mounts the host directory `source` at `destination`, relabelled for
    /// this container alone (`:Z`) where files carry security labels.
    #[must_use]
    pub fn bind(mut self, source: impl Into<String>, destination: impl Into<String>) -> Self {
        self.binds.push((source.into(), destination.into()));
        self
    }

    /// Runs `command` instead of the image's command (the entrypoint stays).
    #[must_use]
    pub fn command<I, S>(mut self, command: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.command = command.into_iter().map(Into::into).collect();
        self
    }

    /// For rootless podman: runs as the calling user (`--userns=keep-id`), so
    /// that files it writes in a bound directory stay the user's.
    #[must_use]
    pub fn keep_id(mut self, keep: bool) -> Self {
        self.keep_id = keep;
        self
    }

    /// The container's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The image.
    pub fn image(&self) -> &str {
        &self.image
    }

    /// The command, when it replaces the image's.
    pub fn command_args(&self) -> &[String] {
        &self.command
    }

    /// The bound directories, as `(host path, path in the container)`.
    pub fn binds(&self) -> &[(String, String)] {
        &self.binds
    }

    /// Whether it runs as the calling user.
    pub fn keeps_id(&self) -> bool {
        self.keep_id
    }
}

/// A command to run inside a running container.
///
/// Environment values and standard input are wiped from memory when the spec is
/// dropped and never shown by `Debug`. Only standard input keeps a secret off the
/// disk: podman writes an exec session's environment into its process spec file
/// (under the container's `userdata`) while the command runs, and the process's
/// environment is readable from `/proc`. Pass a password on standard input, for
/// example `sh -c 'PGPASSWORD="$(cat)" exec psql ...'`.
///
/// ```
/// use homelab_podman::ExecSpec;
///
/// let spec = ExecSpec::new(["psql", "-U", "immich", "-c", "SELECT 1"])
///     .env("PGCONNECT_TIMEOUT", "5")
///     .stdin("secret input");
/// assert!(!format!("{spec:?}").contains("secret input"));
/// ```
#[derive(Clone, Default)]
pub struct ExecSpec {
    command: Vec<String>,
    env: Vec<(String, Zeroizing<String>)>,
    stdin: Option<Zeroizing<Vec<u8>>>,
    user: Option<String>,
    workdir: Option<String>,
}

impl ExecSpec {
    /// Runs `command` (the program, then its arguments; no shell).
    pub fn new<I, S>(command: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            command: command.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// Adds an environment variable.
    #[must_use]
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), Zeroizing::new(value.into())));
        self
    }

    /// Feeds these bytes to the command's standard input, then closes it.
    #[must_use]
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(Zeroizing::new(bytes.into()));
        self
    }

    /// Runs as this user (`name`, `uid` or `uid:gid`) instead of the container's.
    #[must_use]
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Runs in this working directory.
    #[must_use]
    pub fn workdir(mut self, dir: impl Into<String>) -> Self {
        self.workdir = Some(dir.into());
        self
    }

    /// The program and its arguments.
    pub fn command(&self) -> &[String] {
        &self.command
    }

    /// The environment, as `(name, value)`.
    pub fn env_vars(&self) -> impl Iterator<Item = (&str, &str)> {
        self.env.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The bytes for standard input, if any.
    pub fn stdin_bytes(&self) -> Option<&[u8]> {
        self.stdin.as_deref().map(Vec::as_slice)
    }

    /// The user, if set.
    pub fn user_name(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The working directory, if set.
    pub fn working_dir(&self) -> Option<&str> {
        self.workdir.as_deref()
    }
}

impl fmt::Debug for ExecSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecSpec")
            .field("command", &self.command)
            .field(
                "env",
                &self
                    .env
                    .iter()
                    .map(|(k, _)| format!("{k}=[redacted]"))
                    .collect::<Vec<_>>(),
            )
            .field(
                "stdin",
                &self
                    .stdin
                    .as_ref()
                    .map(|s| format!("[{} bytes redacted]", s.len())),
            )
            .field("user", &self.user)
            .field("workdir", &self.workdir)
            .finish()
    }
}

/// What a command run in a container did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ExecOutput {
    /// Its exit code (126: not executable, 127: not found, as a shell reports).
    pub exit_code: i32,
    /// Everything it wrote to standard output.
    pub stdout: Vec<u8>,
    /// Everything it wrote to standard error.
    pub stderr: Vec<u8>,
}

impl ExecOutput {
    /// What a command that exited with `exit_code` wrote.
    pub fn new(exit_code: i32, stdout: impl Into<Vec<u8>>, stderr: impl Into<Vec<u8>>) -> Self {
        Self {
            exit_code,
            stdout: stdout.into(),
            stderr: stderr.into(),
        }
    }

    /// Whether it exited with 0.
    pub fn success(&self) -> bool {
        self.exit_code == 0
    }

    /// Standard output as text (invalid UTF-8 replaced).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Standard error as text (invalid UTF-8 replaced).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// A container's resource use, sampled once.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct ContainerStats {
    /// Memory in use now, in bytes.
    pub memory_current: u64,
    /// The most memory it has used, in bytes, when the host's cgroups tell
    /// (`memory.peak` on cgroup v2, `memory.max_usage_in_bytes` on v1; absent for a
    /// rootless container on cgroup v1, which has no cgroup of its own).
    pub memory_peak: Option<u64>,
    /// Its memory limit in bytes (the host's memory when unlimited).
    pub memory_limit: u64,
    /// CPU use in percent of one CPU, averaged since it started.
    pub cpu_percent: f64,
    /// CPU time used since it started.
    pub cpu_time: Duration,
    /// Number of processes.
    pub pids: u64,
}

/// Which output stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One line of a container's log.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogLine {
    /// Its stream.
    pub stream: LogStream,
    /// The text, without the line end (invalid UTF-8 replaced).
    pub text: String,
}

impl LogLine {
    /// A line of `text` from `stream`.
    pub fn new(stream: LogStream, text: impl Into<String>) -> Self {
        Self {
            stream,
            text: text.into(),
        }
    }
}

/// An image in local storage.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImageInfo {
    /// The ID.
    pub id: String,
    /// The digest, when known.
    pub digest: Option<String>,
    /// Its names (`registry/repository:tag`).
    pub tags: Vec<String>,
    /// When it was built.
    pub created: Option<SystemTime>,
    /// Its size in bytes.
    pub size: u64,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its CPU architecture.
    pub architecture: Option<String>,
    /// Its operating system.
    pub os: Option<String>,
    /// The environment its configuration sets (`ENV`), by name; a name set
    /// twice has its last value.
    pub env: BTreeMap<String, String>,
    /// The volumes its configuration declares (`VOLUME`), as paths in the
    /// container, sorted.
    pub volumes: Vec<String>,
}

impl ImageInfo {
    /// An image with this ID and nothing else known yet: no digest, names,
    /// creation time, labels, architecture, OS, environment or volumes, and
    /// size 0.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            digest: None,
            tags: Vec::new(),
            created: None,
            size: 0,
            labels: BTreeMap::new(),
            architecture: None,
            os: None,
            env: BTreeMap::new(),
            volumes: Vec::new(),
        }
    }
}

/// A podman secret's metadata (never its value).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SecretInfo {
    /// The ID.
    pub id: String,
    /// The name.
    pub name: String,
    /// The driver that stores it (`file`, `pass`, `shell`).
    pub driver: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// When it was created.
    pub created_at: Option<SystemTime>,
    /// When its value last changed.
    pub updated_at: Option<SystemTime>,
}

impl SecretInfo {
    /// A secret with this ID and name in podman's default `file` driver, with
    /// no labels and no times known.
    pub fn new(id: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            driver: "file".to_owned(),
            labels: BTreeMap::new(),
            created_at: None,
            updated_at: None,
        }
    }
}

/// How to create a secret.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecretOptions {
    /// Replace the value of an existing secret of that name (in one step: the
    /// old value stays until the new one is stored). Without it, an existing
    /// secret is an [`Error::AlreadyExists`] and is left untouched.
    pub replace: bool,
    /// Labels for the secret.
    pub labels: BTreeMap<String, String>,
}

/// The kinds of container events a stream can carry.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// A health check ran.
    HealthStatus,
    /// The container's main process ended.
    Died,
    /// The container was restarted by podman.
    Restart,
    /// The container started.
    Start,
    /// The container was stopped.
    Stop,
    /// The container was removed.
    Remove,
}

impl EventType {
    /// Podman's name for the event.
    pub fn podman_name(self) -> &'static str {
        match self {
            Self::HealthStatus => "health_status",
            Self::Died => "died",
            Self::Restart => "restart",
            Self::Start => "start",
            Self::Stop => "stop",
            Self::Remove => "remove",
        }
    }

    /// Every kind.
    pub const ALL: [EventType; 6] = [
        Self::HealthStatus,
        Self::Died,
        Self::Restart,
        Self::Start,
        Self::Stop,
        Self::Remove,
    ];
}

/// What happened to a container.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// A health check ran, with this result.
    HealthStatus(HealthStatus),
    /// Its main process ended, with this exit code when podman tells.
    Died {
        /// The exit code.
        exit_code: Option<i32>,
    },
    /// Podman restarted it.
    Restarted,
    /// It started.
    Started,
    /// It was stopped.
    Stopped,
    /// It was removed.
    Removed,
}

/// A container event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ContainerEvent {
    /// When it happened.
    pub time: SystemTime,
    /// The container's ID.
    pub container_id: String,
    /// The container's name.
    pub container_name: String,
    /// What happened.
    pub kind: EventKind,
}

impl ContainerEvent {
    /// What happened to a container, and when.
    pub fn new(
        time: SystemTime,
        container_id: impl Into<String>,
        container_name: impl Into<String>,
        kind: EventKind,
    ) -> Self {
        Self {
            time,
            container_id: container_id.into(),
            container_name: container_name.into(),
            kind,
        }
    }
}

/// Which events a stream carries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventFilter {
    /// Only these containers (names or IDs); all containers when empty.
    pub containers: Vec<String>,
    /// Only these kinds; health, died and restart when empty.
    pub types: Vec<EventType>,
    /// Also replay past events since this time (podman keeps a journal of them).
    pub since: Option<SystemTime>,
}

impl EventFilter {
    /// Events of one container.
    pub fn container(name: impl Into<String>) -> Self {
        Self {
            containers: vec![name.into()],
            ..Self::default()
        }
    }

    /// Only these kinds of event.
    #[must_use]
    pub fn types(mut self, types: impl IntoIterator<Item = EventType>) -> Self {
        self.types = types.into_iter().collect();
        self
    }

    /// Also past events since `time`.
    #[must_use]
    pub fn since(mut self, time: SystemTime) -> Self {
        self.since = Some(time);
        self
    }

    /// The kinds this filter lets through.
    pub fn effective_types(&self) -> Vec<EventType> {
        if self.types.is_empty() {
            vec![EventType::HealthStatus, EventType::Died, EventType::Restart]
        } else {
            self.types.clone()
        }
    }

    /// Whether `event` passes this filter (matching the container by name or ID).
    pub fn matches(&self, event: &ContainerEvent) -> bool {
        let container_ok = self.containers.is_empty()
            || self
                .containers
                .iter()
                .any(|c| *c == event.container_name || event.container_id.starts_with(c.as_str()));
        let kind = match &event.kind {
            EventKind::HealthStatus(_) => EventType::HealthStatus,
            EventKind::Died { .. } => EventType::Died,
            EventKind::Restarted => EventType::Restart,
            EventKind::Started => EventType::Start,
            EventKind::Stopped => EventType::Stop,
            EventKind::Removed => EventType::Remove,
        };
        let time_ok = self.since.is_none_or(|t| event.time >= t);
        container_ok && time_ok && self.effective_types().contains(&kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_numbers() {
        let v = |s: &str| Version {
            version: s.into(),
            api_version: s.into(),
        };
        assert_eq!(v("5.4.2").numbers(), Some((5, 4, 2)));
        assert_eq!(v("5.5.0-dev").numbers(), Some((5, 5, 0)));
        assert_eq!(v("4.9").numbers(), Some((4, 9, 0)));
        assert_eq!(v("x").numbers(), None);
        assert!(v("5.4.2").at_least(4, 4));
        assert!(v("5.4.2").at_least(5, 4));
        assert!(!v("4.3.1").at_least(4, 4));
    }

    #[test]
    fn network_spec_validation_says_what_to_fix() {
        let ok = NetworkSpec::new("photos")
            .subnet("10.89.5.0/24".parse().unwrap())
            .gateway("10.89.5.1".parse().unwrap());
        ok.validate().unwrap();
        let cases = [
            (NetworkSpec::new(""), "name", "empty"),
            (NetworkSpec::new("-x"), "name", "start with"),
            (NetworkSpec::new("a b"), "name", "' '"),
            (NetworkSpec::new("a/b"), "name", "'/'"),
            (
                ok.clone().subnet("10.89.5.7/24".parse().unwrap()),
                "subnet",
                "10.89.5.0/24",
            ),
            (
                ok.clone().gateway("10.89.6.1".parse().unwrap()),
                "gateway",
                "outside",
            ),
            (
                ok.clone().gateway("10.89.5.0".parse().unwrap()),
                "gateway",
                "own address",
            ),
            (
                NetworkSpec::new("x").gateway("10.0.0.1".parse().unwrap()),
                "gateway",
                "without a subnet",
            ),
            (ok.clone().label("", "v"), "labels", "non-empty"),
        ];
        for (spec, field, words) in cases {
            let e = spec.validate().unwrap_err();
            let Error::InvalidNetwork { field: f, .. } = &e else {
                panic!("{e:?}")
            };
            assert_eq!(*f, field, "{e}");
            assert!(e.to_string().contains(words), "{e}");
        }
    }

    #[test]
    fn overlaps_are_found_per_subnet() {
        let net = |name: &str, subnets: &[&str]| NetworkInfo {
            name: name.into(),
            id: String::new(),
            driver: "bridge".into(),
            interface: None,
            subnets: subnets
                .iter()
                .map(|s| NetworkSubnet {
                    subnet: s.parse().unwrap(),
                    gateway: None,
                })
                .collect(),
            dns_servers: vec![],
            dns_enabled: true,
            internal: false,
            labels: BTreeMap::new(),
            containers: BTreeMap::new(),
        };
        let nets = [
            net("podman", &["10.88.0.0/16"]),
            net("wide", &["10.0.0.0/8", "fd00::/64"]),
            net("other", &["192.168.7.0/24"]),
        ];
        let found = find_overlaps(&"10.88.3.0/24".parse().unwrap(), &nets);
        let names: Vec<_> = found.iter().map(|o| o.network.as_str()).collect();
        assert_eq!(names, ["podman", "wide"]);
        assert_eq!(found[1].subnet.to_string(), "10.0.0.0/8");
        assert!(find_overlaps(&"172.16.0.0/24".parse().unwrap(), &nets).is_empty());
    }

    #[test]
    fn exec_spec_debug_hides_values() {
        let spec = ExecSpec::new(["env"])
            .env("PGPASSWORD", "hunter2")
            .stdin("s3cret");
        let text = format!("{spec:?}");
        assert!(
            !text.contains("hunter2") && !text.contains("s3cret"),
            "{text}"
        );
        assert!(text.contains("PGPASSWORD=[redacted]"), "{text}");
        assert_eq!(spec.stdin_bytes(), Some(&b"s3cret"[..]));
    }

    #[test]
    fn event_filter_matches_by_name_id_and_kind() {
        let event = ContainerEvent {
            time: SystemTime::UNIX_EPOCH + Duration::from_secs(100),
            container_id: "abcdef123".into(),
            container_name: "pg".into(),
            kind: EventKind::Died { exit_code: Some(1) },
        };
        assert!(EventFilter::default().matches(&event));
        assert!(EventFilter::container("pg").matches(&event));
        assert!(EventFilter::container("abcdef").matches(&event));
        assert!(!EventFilter::container("valkey").matches(&event));
        assert!(
            !EventFilter::default()
                .types([EventType::Start])
                .matches(&event)
        );
        assert!(
            !EventFilter::default()
                .since(SystemTime::UNIX_EPOCH + Duration::from_secs(101))
                .matches(&event)
        );
    }
}
