//! [`FakeRuntime`]: a recording, scriptable [`Runtime`] for fast tests of code
//! that uses one.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use homelab_secrets::SecretValue;

use crate::error::{Error, ObjectKind, Result};
use crate::model::{
    CgroupVersion, ContainerEvent, ContainerInfo, ContainerState, ContainerStats, ContainerStatus,
    EventFilter, ExecOutput, ExecSpec, Health, HostInfo, ImageInfo, LogLine, NetworkInfo,
    NetworkSpec, NetworkSubnet, RunSpec, SecretInfo, SecretOptions, Version,
};
use crate::podman::check_secret;
use crate::runtime::{EventStream, Runtime};

/// Which [`Runtime`] operation a recorded [`Call`] was.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // one variant per trait method, named alike
pub enum Operation {
    Version,
    HostInfo,
    CreateNetwork,
    InspectNetwork,
    NetworkExists,
    ListNetworks,
    RemoveNetwork,
    InspectContainer,
    ContainerExists,
    RunHealthCheck,
    Exec,
    ExecStreaming,
    ContainerStats,
    ContainerLogs,
    RemoveContainer,
    RunContainer,
    ImageExists,
    InspectImage,
    PullImage,
    TagImage,
    ListSecrets,
    InspectSecret,
    SecretExists,
    RemoveSecret,
    CreateSecret,
    ReadSecret,
    Events,
}

/// One call made to a [`FakeRuntime`]. Secret values and environment values are
/// never recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Call {
    /// The operation.
    pub operation: Operation,
    /// The object it was made on (a name, a reference), when there is one.
    pub target: Option<String>,
    /// For [`Operation::Exec`] and [`Operation::ExecStreaming`], the command; for
    /// [`Operation::CreateSecret`],
    /// `["replace"]` when asked to replace.
    pub args: Vec<String>,
}

impl Call {
    /// A call of `operation` on `target` with `args`.
    pub fn new(
        operation: Operation,
        target: Option<String>,
        args: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            operation,
            target,
            args: args.into_iter().map(Into::into).collect(),
        }
    }
}

type ExecScript = Arc<dyn Fn(&ExecSpec) -> ExecOutput + Send + Sync>;

#[derive(Default)]
struct State {
    calls: Vec<Call>,
    failures: HashMap<Operation, VecDeque<Error>>,
    host: Option<HostInfo>,
    networks: BTreeMap<String, NetworkInfo>,
    containers: BTreeMap<String, ContainerInfo>,
    health: HashMap<String, VecDeque<Health>>,
    exec: HashMap<String, ExecScript>,
    stats: HashMap<String, ContainerStats>,
    logs: HashMap<String, Vec<LogLine>>,
    images: BTreeMap<String, ImageInfo>,
    registry: BTreeMap<String, ImageInfo>,
    secrets: BTreeMap<String, (SecretInfo, SecretValue)>,
    events: Vec<ContainerEvent>,
    next_id: u64,
}

/// A [`Runtime`] held in memory: it records every call, keeps networks, containers,
/// images and secrets as podman would (the same errors for missing and existing
/// objects), and answers health checks, commands, statistics, logs and events as
/// the test scripts them.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use homelab_podman::{FakeRuntime, NetworkSpec, Operation, Runtime, parse_cidr};
///
/// let fake = FakeRuntime::new();
/// fake.create_network(&NetworkSpec::new("photos").subnet(parse_cidr("10.89.5.0/24")?))
///     .await?;
/// assert!(fake.network_exists("photos").await?);
/// let overlaps = fake.overlapping_networks(&parse_cidr("10.89.0.0/16")?).await?;
/// assert_eq!(overlaps[0].network, "photos");
/// assert_eq!(fake.calls_to(Operation::CreateNetwork), ["photos"]);
/// # Ok::<(), homelab_podman::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Default)]
pub struct FakeRuntime {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for FakeRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.lock();
        f.debug_struct("FakeRuntime")
            .field("calls", &s.calls.len())
            .field("networks", &s.networks.keys().collect::<Vec<_>>())
            .field("containers", &s.containers.keys().collect::<Vec<_>>())
            .field("images", &s.images.keys().collect::<Vec<_>>())
            .field("secrets", &s.secrets.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn not_found(kind: ObjectKind, name: &str) -> Error {
    Error::NotFound {
        kind,
        name: name.to_owned(),
    }
}

impl FakeRuntime {
    /// An empty runtime: no networks, containers, images or secrets; podman 5.4.2,
    /// rootful, cgroup v2, netavark.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every change is one insert or remove: a panic elsewhere cannot leave the
        // state half-changed.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the call, then returns the failure scripted for it, if any.
    fn enter(&self, operation: Operation, target: Option<&str>, args: Vec<String>) -> Result<()> {
        let mut s = self.lock();
        s.calls.push(Call {
            operation,
            target: target.map(str::to_owned),
            args,
        });
        match s.failures.get_mut(&operation).and_then(VecDeque::pop_front) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn new_id(&self) -> String {
        let mut s = self.lock();
        s.next_id += 1;
        format!("{:064x}", s.next_id)
    }

    // --- what the test sees -------------------------------------------------------

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The targets of the calls to one operation, in order.
    pub fn calls_to(&self, operation: Operation) -> Vec<String> {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.operation == operation)
            .map(|c| c.target.clone().unwrap_or_default())
            .collect()
    }

    /// Forgets the calls recorded so far.
    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    /// The stored value of a secret (for assertions).
    pub fn secret_value(&self, name: &str) -> Option<SecretValue> {
        self.lock().secrets.get(name).map(|(_, v)| v.clone())
    }

    // --- what the test scripts ----------------------------------------------------

    /// Makes the next call to `operation` fail with `error` (queued: one error per
    /// call).
    pub fn fail_next(&self, operation: Operation, error: Error) {
        self.lock()
            .failures
            .entry(operation)
            .or_default()
            .push_back(error);
    }

    /// Sets what [`Runtime::host_info`] and [`Runtime::version`] answer.
    pub fn set_host_info(&self, info: HostInfo) {
        self.lock().host = Some(info);
    }

    /// Adds (or replaces) a network as it exists.
    pub fn add_network(&self, network: NetworkInfo) {
        self.lock().networks.insert(network.name.clone(), network);
    }

    /// Adds (or replaces) a container as it exists.
    pub fn add_container(&self, container: ContainerInfo) {
        self.lock()
            .containers
            .insert(container.name.clone(), container);
    }

    /// Adds (or replaces) an image under each of its tags.
    pub fn add_image(&self, image: &ImageInfo) {
        let mut s = self.lock();
        for tag in &image.tags {
            s.images.insert(tag.clone(), image.clone());
        }
    }

    /// Makes an image pullable: [`Runtime::pull_image`] of any of its tags
    /// stores it locally. Other pulls fail as an unreachable registry does.
    pub fn publish_image(&self, image: &ImageInfo) {
        let mut s = self.lock();
        for tag in &image.tags {
            s.registry.insert(tag.clone(), image.clone());
        }
    }

    /// Adds a secret as if created earlier.
    pub fn add_secret(&self, name: &str, value: SecretValue) {
        let info = SecretInfo {
            id: self.new_id(),
            name: name.to_owned(),
            driver: "file".into(),
            labels: BTreeMap::new(),
            created_at: Some(SystemTime::now()),
            updated_at: Some(SystemTime::now()),
        };
        self.lock().secrets.insert(name.to_owned(), (info, value));
    }

    /// Queues results of [`Runtime::run_health_check`] for a container; the last
    /// one repeats. Without any, the container's own `health` is answered.
    pub fn script_health(&self, container: &str, results: impl IntoIterator<Item = Health>) {
        self.lock()
            .health
            .entry(container.to_owned())
            .or_default()
            .extend(results);
    }

    /// Answers [`Runtime::exec`] in this container with `script`. Without one, a
    /// command exits with 127 and says so on standard error.
    pub fn script_exec(
        &self,
        container: &str,
        script: impl Fn(&ExecSpec) -> ExecOutput + Send + Sync + 'static,
    ) {
        self.lock()
            .exec
            .insert(container.to_owned(), Arc::new(script));
    }

    /// Sets what [`Runtime::container_stats`] answers for a container.
    pub fn set_stats(&self, container: &str, stats: ContainerStats) {
        self.lock().stats.insert(container.to_owned(), stats);
    }

    /// Sets a container's log.
    pub fn set_logs(&self, container: &str, lines: Vec<LogLine>) {
        self.lock().logs.insert(container.to_owned(), lines);
    }

    /// Queues an event; [`Runtime::events`] streams the queued events that match
    /// its filter, then ends.
    pub fn push_event(&self, event: ContainerEvent) {
        self.lock().events.push(event);
    }

    fn container(&self, name: &str) -> Result<ContainerInfo> {
        let s = self.lock();
        s.containers
            .get(name)
            .or_else(|| {
                s.containers
                    .values()
                    .find(|c| c.id.starts_with(name) && !name.is_empty())
            })
            .cloned()
            .ok_or_else(|| not_found(ObjectKind::Container, name))
    }
}

fn default_host() -> HostInfo {
    HostInfo {
        version: Version {
            version: "5.4.2".into(),
            api_version: "5.4.2".into(),
        },
        rootless: false,
        cgroup_version: CgroupVersion::V2,
        cgroup_manager: "systemd".into(),
        network_backend: "netavark".into(),
        oci_runtime: "crun".into(),
        kernel: "6.1.0".into(),
    }
}

#[async_trait::async_trait]
impl Runtime for FakeRuntime {
    async fn version(&self) -> Result<Version> {
        self.enter(Operation::Version, None, vec![])?;
        Ok(self
            .lock()
            .host
            .clone()
            .unwrap_or_else(default_host)
            .version)
    }

    async fn host_info(&self) -> Result<HostInfo> {
        self.enter(Operation::HostInfo, None, vec![])?;
        Ok(self.lock().host.clone().unwrap_or_else(default_host))
    }

    async fn create_network(&self, spec: &NetworkSpec) -> Result<NetworkInfo> {
        self.enter(Operation::CreateNetwork, Some(&spec.name), vec![])?;
        spec.validate()?;
        let id = self.new_id();
        let mut s = self.lock();
        if s.networks.contains_key(&spec.name) {
            return Err(Error::AlreadyExists {
                kind: ObjectKind::Network,
                name: spec.name.clone(),
            });
        }
        let info = NetworkInfo {
            name: spec.name.clone(),
            id,
            driver: "bridge".into(),
            interface: Some(format!("podman{}", s.networks.len() + 1)),
            subnets: spec
                .subnet
                .iter()
                .map(|subnet| NetworkSubnet {
                    subnet: *subnet,
                    gateway: spec.gateway,
                })
                .collect(),
            dns_servers: spec.dns.clone(),
            dns_enabled: true,
            internal: spec.internal,
            labels: spec.labels.clone(),
            containers: BTreeMap::new(),
        };
        s.networks.insert(spec.name.clone(), info.clone());
        Ok(info)
    }

    async fn inspect_network(&self, name: &str) -> Result<NetworkInfo> {
        self.enter(Operation::InspectNetwork, Some(name), vec![])?;
        self.lock()
            .networks
            .get(name)
            .cloned()
            .ok_or_else(|| not_found(ObjectKind::Network, name))
    }

    async fn network_exists(&self, name: &str) -> Result<bool> {
        self.enter(Operation::NetworkExists, Some(name), vec![])?;
        Ok(self.lock().networks.contains_key(name))
    }

    async fn list_networks(&self) -> Result<Vec<NetworkInfo>> {
        self.enter(Operation::ListNetworks, None, vec![])?;
        Ok(self.lock().networks.values().cloned().collect())
    }

    async fn remove_network(&self, name: &str) -> Result<()> {
        self.enter(Operation::RemoveNetwork, Some(name), vec![])?;
        let mut s = self.lock();
        let in_use = s
            .containers
            .values()
            .filter(|c| c.networks.contains_key(name))
            .map(|c| c.name.clone())
            .collect::<Vec<_>>();
        if !in_use.is_empty() && s.networks.contains_key(name) {
            return Err(Error::InUse {
                kind: ObjectKind::Network,
                name: name.to_owned(),
                message: format!("containers on it: {}", in_use.join(", ")),
            });
        }
        s.networks
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| not_found(ObjectKind::Network, name))
    }

    async fn inspect_container(&self, name: &str) -> Result<ContainerInfo> {
        self.enter(Operation::InspectContainer, Some(name), vec![])?;
        self.container(name)
    }

    async fn container_exists(&self, name: &str) -> Result<bool> {
        self.enter(Operation::ContainerExists, Some(name), vec![])?;
        Ok(self.container(name).is_ok())
    }

    async fn run_health_check(&self, name: &str) -> Result<Health> {
        self.enter(Operation::RunHealthCheck, Some(name), vec![])?;
        let container = self.container(name)?;
        let mut s = self.lock();
        if let Some(queue) = s.health.get_mut(&container.name) {
            if queue.len() > 1
                && let Some(h) = queue.pop_front()
            {
                return Ok(h);
            }
            if let Some(h) = queue.front() {
                return Ok(h.clone());
            }
        }
        container.health.ok_or(Error::NoHealthCheck {
            container: container.name,
        })
    }

    async fn exec(&self, name: &str, spec: &ExecSpec) -> Result<ExecOutput> {
        self.enter(Operation::Exec, Some(name), spec.command().to_vec())?;
        let container = self.container(name)?;
        if !container.state.running {
            return Err(Error::Rejected {
                operation: "run a command in container",
                name: Some(name.to_owned()),
                status: 409,
                message: format!("container state improper: it is {}", container.state.status),
            });
        }
        let script = self.lock().exec.get(&container.name).cloned();
        Ok(match script {
            Some(script) => script(spec),
            None => ExecOutput {
                exit_code: 127,
                stdout: Vec::new(),
                stderr: format!("fake runtime: no command scripted for {}\n", container.name)
                    .into_bytes(),
            },
        })
    }

    async fn exec_streaming(
        &self,
        name: &str,
        spec: &ExecSpec,
        stdin: Option<&mut (dyn tokio::io::AsyncRead + Unpin + Send)>,
        stdout: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    ) -> Result<ExecOutput> {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        self.enter(
            Operation::ExecStreaming,
            Some(name),
            spec.command().to_vec(),
        )?;
        let container = self.container(name)?;
        if !container.state.running {
            return Err(Error::Rejected {
                operation: "run a command in container",
                name: Some(name.to_owned()),
                status: 409,
                message: format!("container state improper: it is {}", container.state.status),
            });
        }
        let stream_error = |stream: &'static str, source: std::io::Error| Error::ExecStream {
            container: name.to_owned(),
            stream,
            source,
        };
        // The script sees the whole input as the spec's standard input.
        let spec = match stdin {
            Some(input) => {
                let mut bytes = Vec::new();
                input
                    .read_to_end(&mut bytes)
                    .await
                    .map_err(|e| stream_error("standard input", e))?;
                spec.clone().stdin(bytes)
            }
            None => spec.clone(),
        };
        let script = self.lock().exec.get(&container.name).cloned();
        let mut out = match script {
            Some(script) => script(&spec),
            None => ExecOutput {
                exit_code: 127,
                stdout: Vec::new(),
                stderr: format!("fake runtime: no command scripted for {}\n", container.name)
                    .into_bytes(),
            },
        };
        let written = std::mem::take(&mut out.stdout);
        stdout
            .write_all(&written)
            .await
            .map_err(|e| stream_error("standard output", e))?;
        stdout
            .flush()
            .await
            .map_err(|e| stream_error("standard output", e))?;
        Ok(out)
    }

    async fn container_stats(&self, name: &str) -> Result<ContainerStats> {
        self.enter(Operation::ContainerStats, Some(name), vec![])?;
        let container = self.container(name)?;
        if !container.state.running {
            return Err(Error::StatsUnavailable {
                container: name.to_owned(),
                reason: format!("it is {}, not running", container.state.status),
            });
        }
        Ok(self
            .lock()
            .stats
            .get(&container.name)
            .cloned()
            .unwrap_or_default())
    }

    async fn container_logs(&self, name: &str, lines: usize) -> Result<Vec<LogLine>> {
        self.enter(Operation::ContainerLogs, Some(name), vec![])?;
        let container = self.container(name)?;
        let all = self
            .lock()
            .logs
            .get(&container.name)
            .cloned()
            .unwrap_or_default();
        Ok(all[all.len().saturating_sub(lines)..].to_vec())
    }

    async fn remove_container(&self, name: &str, force: bool) -> Result<()> {
        self.enter(Operation::RemoveContainer, Some(name), vec![])?;
        let container = self.container(name)?;
        if container.state.running && !force {
            return Err(Error::InUse {
                kind: ObjectKind::Container,
                name: name.to_owned(),
                message: "it is running; stop it first or force".into(),
            });
        }
        self.lock().containers.remove(&container.name);
        Ok(())
    }

    async fn run_container(&self, spec: &RunSpec) -> Result<()> {
        self.enter(
            Operation::RunContainer,
            Some(spec.name()),
            spec.command_args().to_vec(),
        )?;
        if self.lock().containers.contains_key(spec.name()) {
            return Err(Error::AlreadyExists {
                kind: ObjectKind::Container,
                name: spec.name().to_owned(),
            });
        }
        if !self.lock().images.contains_key(spec.image()) {
            return Err(not_found(ObjectKind::Image, spec.image()));
        }
        let mut state = ContainerState::new(ContainerStatus::Running);
        state.pid = Some(1);
        state.started_at = Some(SystemTime::now());
        let info = ContainerInfo::new(self.new_id(), spec.name(), spec.image(), state);
        self.add_container(info);
        Ok(())
    }

    async fn image_exists(&self, reference: &str) -> Result<bool> {
        self.enter(Operation::ImageExists, Some(reference), vec![])?;
        Ok(self.lock().images.contains_key(reference))
    }

    async fn inspect_image(&self, reference: &str) -> Result<ImageInfo> {
        self.enter(Operation::InspectImage, Some(reference), vec![])?;
        self.lock()
            .images
            .get(reference)
            .cloned()
            .ok_or_else(|| not_found(ObjectKind::Image, reference))
    }

    async fn pull_image(&self, reference: &str) -> Result<ImageInfo> {
        self.enter(Operation::PullImage, Some(reference), vec![])?;
        crate::ImageRef::parse(reference)?;
        let mut s = self.lock();
        let Some(image) = s.registry.get(reference).cloned() else {
            return Err(Error::PullFailed {
                image: reference.to_owned(),
                reason: "fake runtime: no registry serves it".into(),
            });
        };
        for tag in &image.tags {
            s.images.insert(tag.clone(), image.clone());
        }
        Ok(image)
    }

    async fn tag_image(&self, image: &str, reference: &str) -> Result<()> {
        self.enter(Operation::TagImage, Some(reference), vec![image.to_owned()])?;
        let (repo, tag) = crate::image::name_and_tag(reference)?;
        let name = format!("{repo}:{tag}");
        let mut s = self.lock();
        let Some(mut found) = s
            .images
            .values()
            .find(|i| i.id == image || i.tags.iter().any(|t| t == image))
            .cloned()
        else {
            return Err(not_found(ObjectKind::Image, image));
        };
        // The name leaves the image it named.
        for other in s.images.values_mut() {
            other.tags.retain(|t| *t != name);
        }
        if !found.tags.contains(&name) {
            found.tags.push(name.clone());
        }
        let id = found.id.clone();
        for other in s.images.values_mut() {
            if other.id == id {
                other.tags.clone_from(&found.tags);
            }
        }
        s.images.insert(name, found);
        Ok(())
    }

    async fn list_secrets(&self) -> Result<Vec<SecretInfo>> {
        self.enter(Operation::ListSecrets, None, vec![])?;
        Ok(self
            .lock()
            .secrets
            .values()
            .map(|(i, _)| i.clone())
            .collect())
    }

    async fn inspect_secret(&self, name: &str) -> Result<SecretInfo> {
        self.enter(Operation::InspectSecret, Some(name), vec![])?;
        self.lock()
            .secrets
            .get(name)
            .map(|(i, _)| i.clone())
            .ok_or_else(|| not_found(ObjectKind::Secret, name))
    }

    async fn secret_exists(&self, name: &str) -> Result<bool> {
        self.enter(Operation::SecretExists, Some(name), vec![])?;
        Ok(self.lock().secrets.contains_key(name))
    }

    async fn remove_secret(&self, name: &str) -> Result<()> {
        self.enter(Operation::RemoveSecret, Some(name), vec![])?;
        self.lock()
            .secrets
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| not_found(ObjectKind::Secret, name))
    }

    async fn create_secret(
        &self,
        name: &str,
        value: &SecretValue,
        options: &SecretOptions,
    ) -> Result<SecretInfo> {
        let args = if options.replace {
            vec!["replace".to_owned()]
        } else {
            vec![]
        };
        self.enter(Operation::CreateSecret, Some(name), args)?;
        check_secret(name, value)?;
        let id = self.new_id();
        let mut s = self.lock();
        let now = SystemTime::now();
        let info = match s.secrets.get(name) {
            Some(_) if !options.replace => {
                return Err(Error::AlreadyExists {
                    kind: ObjectKind::Secret,
                    name: name.to_owned(),
                });
            }
            Some((old, _)) => SecretInfo {
                labels: options.labels.clone(),
                updated_at: Some(now),
                ..old.clone()
            },
            None => SecretInfo {
                id,
                name: name.to_owned(),
                driver: "file".into(),
                labels: options.labels.clone(),
                created_at: Some(now),
                updated_at: Some(now),
            },
        };
        s.secrets
            .insert(name.to_owned(), (info.clone(), value.clone()));
        Ok(info)
    }

    async fn read_secret(&self, name: &str) -> Result<SecretValue> {
        self.enter(Operation::ReadSecret, Some(name), vec![])?;
        self.lock()
            .secrets
            .get(name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| not_found(ObjectKind::Secret, name))
    }

    async fn events(&self, filter: &EventFilter) -> Result<EventStream> {
        self.enter(Operation::Events, None, filter.containers.clone())?;
        let events: Vec<_> = self
            .lock()
            .events
            .iter()
            .filter(|e| filter.matches(e))
            .cloned()
            .map(Ok)
            .collect();
        Ok(Box::pin(futures_util::stream::iter(events)))
    }
}
