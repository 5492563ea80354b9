//! [`Podman`]: the [`Runtime`] on a podman service socket.
//!
//! Most operations go through the podman-api crate. Four do not, each for a
//! reason found against podman 5.4:
//! - creating a secret: podman-api sends the value as a JSON string, and podman
//!   stores the quotes (`abc+/=` becomes `"abc+/="`); here the raw bytes are the
//!   request body;
//! - reading a secret's value: podman-api has no `showsecret` call;
//! - container inspect, networks, stats and events: podman-api's models are those
//!   of API 4.3 and fail to decode podman 5's own answers (a container's
//!   `Config.Entrypoint` is a list and `Config.StopSignal` a name), or drop what
//!   podman 5 added (a network's DNS servers and containers, a health event's
//!   status). These are decoded with the narrower models in [`crate::wire`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt as _;
use homelab_secrets::SecretValue;
use podman_api::conn::TtyChunk;
use podman_api::opts;
use serde::de::DeserializeOwned;

use crate::connect::{ConnectOptions, PrivateService, connect};
use crate::error::{Error, ObjectKind, Result, classify, from_status};
use crate::http::{Http, Response, ServiceHeaders, encode};
use crate::image::ImageRef;
use crate::model::{
    CgroupVersion, ContainerInfo, ContainerStats, EventFilter, ExecOutput, ExecSpec, Health,
    HealthStatus, HostInfo, ImageInfo, LogLine, LogStream, NetworkInfo, NetworkSpec, RunSpec,
    SecretInfo, SecretOptions, Version,
};
use crate::runtime::{EventStream, Runtime};
use crate::wire;

/// The largest secret podman stores (its limit is "less than 512000 bytes").
pub const MAX_SECRET_LEN: usize = 511_999;

/// The API version of paths that podman 4 and 5 both serve.
const BASE_API: &str = "/v4.0.0/libpod";

/// Podman behind its service socket: the real [`Runtime`].
///
/// Cloning is cheap and shares the connection (and the private service, if one
/// was started, which stops when the last clone is dropped).
///
/// ```no_run
/// # async fn demo() -> Result<(), homelab_podman::Error> {
/// use homelab_podman::{Podman, Runtime};
///
/// let podman = Podman::connect().await?;
/// let info = podman.host_info().await?;
/// println!("podman {} (rootless: {})", info.version.version, info.rootless);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Podman {
    api: podman_api::Podman,
    http: Http,
    /// `/vX.Y.Z/libpod` at the service's own API version, for podman 5's shapes.
    native: String,
    /// The versions, learnt while connecting: podman tells them in the head of
    /// its answer to the ping that finds it, so asking `/version` (slow: podman
    /// asks the package manager about conmon and the OCI runtime) is seldom
    /// needed.
    version: Version,
    service: Option<Arc<PrivateService>>,
}

impl Podman {
    /// Connects with the default options: the user's usual sockets, else a private
    /// service ([`ConnectOptions::new`]).
    pub async fn connect() -> Result<Self> {
        Self::connect_with(&ConnectOptions::new()).await
    }

    /// Connects as `options` say.
    ///
    /// This costs one `_ping` per socket tried: podman's answer names its
    /// release and API version, which the connection keeps (for
    /// [`version`](Runtime::version) and for the API paths it uses). Only a
    /// service that does not say them is asked its `/version`.
    pub async fn connect_with(options: &ConnectOptions) -> Result<Self> {
        let connected = connect(options).await?;
        let http = Http::new(&connected.socket);
        let version = match announced_version(&connected.headers) {
            Some(version) => version,
            None => query_version(&http).await?,
        };
        let api = Version {
            version: version.api_version.clone(),
            api_version: version.api_version.clone(),
        };
        let native = api.numbers().map_or_else(
            || BASE_API.to_owned(),
            |(major, minor, patch)| format!("/v{major}.{minor}.{patch}/libpod"),
        );
        Ok(Self {
            api: podman_api::Podman::unix(&connected.socket),
            http,
            native,
            version,
            service: connected.service,
        })
    }

    /// The socket this connection talks to.
    pub fn socket(&self) -> &Path {
        self.http.socket()
    }

    /// The private service this connection started, if it started one.
    pub fn private_service(&self) -> Option<&PrivateService> {
        self.service.as_deref()
    }

    pub(crate) fn connection_error(
        &self,
        operation: &'static str,
        name: Option<&str>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        Error::Connection {
            socket: self.socket().to_owned(),
            operation,
            name: name.map(str::to_owned),
            source: Box::new(source),
        }
    }

    /// The podman-api client.
    pub(crate) fn api(&self) -> &podman_api::Podman {
        &self.api
    }

    /// The raw HTTP client.
    pub(crate) fn http(&self) -> &Http {
        &self.http
    }

    /// `/vX.Y.Z/libpod` at the service's own API version.
    pub(crate) fn native(&self) -> &str {
        &self.native
    }

    /// Maps a podman-api error.
    pub(crate) fn api_error(
        &self,
        operation: &'static str,
        kind: ObjectKind,
        name: Option<&str>,
        error: podman_api::Error,
    ) -> Error {
        match error {
            podman_api::Error::Fault { code, message } => {
                classify(operation, kind, name, code.as_u16(), "", message)
            }
            podman_api::Error::SerdeJsonError(e) => Error::Protocol {
                operation,
                name: name.map(str::to_owned),
                detail: format!("cannot decode the answer: {e}"),
            },
            other => self.connection_error(operation, name, other),
        }
    }

    /// One raw request at the service's own API version.
    async fn raw(
        &self,
        operation: &'static str,
        name: Option<&str>,
        method: &str,
        path: &str,
        body: Option<(&str, &[u8])>,
    ) -> Result<Response> {
        let target = format!("{}{path}", self.native);
        self.http
            .request(method, &target, body)
            .await
            .map_err(|e| self.connection_error(operation, name, e))
    }

    /// A raw GET decoded with one of this crate's models.
    async fn raw_json<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        kind: ObjectKind,
        name: Option<&str>,
        path: &str,
    ) -> Result<T> {
        let response = self.raw(operation, name, "GET", path, None).await?;
        if !response.is_success() {
            return Err(from_status(
                operation,
                kind,
                name,
                response.status,
                &response.body,
            ));
        }
        decode(operation, name, &response.body)
    }

    /// `exists` endpoints answer 204 or 404.
    async fn raw_exists(
        &self,
        operation: &'static str,
        kind: ObjectKind,
        path: &str,
        name: &str,
    ) -> Result<bool> {
        let response = self.raw(operation, Some(name), "GET", path, None).await?;
        match response.status {
            204 | 200 => Ok(true),
            404 => Ok(false),
            status => Err(from_status(
                operation,
                kind,
                Some(name),
                status,
                &response.body,
            )),
        }
    }
}

/// The versions podman announced in the head of an answer, when it did.
fn announced_version(headers: &ServiceHeaders) -> Option<Version> {
    let api_version = headers.libpod_api_version.as_ref()?;
    Some(Version {
        version: headers.podman_version().unwrap_or(api_version).to_owned(),
        api_version: api_version.clone(),
    })
}

/// Asks the service its versions (`/version`, at the base API that podman 4
/// and 5 serve).
async fn query_version(http: &Http) -> Result<Version> {
    let op = "read the podman version";
    let response = http
        .request("GET", &format!("{BASE_API}/version"), None)
        .await
        .map_err(|e| Error::Connection {
            socket: http.socket().to_owned(),
            operation: op,
            name: None,
            source: Box::new(e),
        })?;
    if !response.is_success() {
        return Err(from_status(
            op,
            ObjectKind::Container,
            None,
            response.status,
            &response.body,
        ));
    }
    let v: wire::VersionJson = decode(op, None, &response.body)?;
    Ok(Version {
        api_version: v.libpod_api_version().unwrap_or_else(|| v.version.clone()),
        version: v.version,
    })
}

fn decode<T: DeserializeOwned>(
    operation: &'static str,
    name: Option<&str>,
    body: &[u8],
) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| Error::Protocol {
        operation,
        name: name.map(str::to_owned),
        detail: format!("cannot decode the answer: {e}"),
    })
}

fn to_system_time(t: chrono::DateTime<chrono::Utc>) -> Option<SystemTime> {
    (t.timestamp() > 0).then(|| SystemTime::from(t))
}

fn hash_to_btree(
    map: Option<std::collections::HashMap<String, String>>,
) -> BTreeMap<String, String> {
    map.unwrap_or_default().into_iter().collect()
}

/// An image's `NAME=VALUE` environment as a map (the last value of a name
/// wins, as in a container's environment); an entry without `=` is a name
/// with an empty value.
fn env_map(entries: Vec<String>) -> BTreeMap<String, String> {
    entries
        .into_iter()
        .map(|entry| match entry.split_once('=') {
            Some((name, value)) => (name.to_owned(), value.to_owned()),
            None => (entry, String::new()),
        })
        .collect()
}

/// Reads peak memory from the container's cgroup on this host, when visible.
fn memory_peak(cgroup_path: Option<&str>) -> Option<u64> {
    let path = cgroup_path?.trim_start_matches('/');
    if path.is_empty() {
        return None;
    }
    let candidates = [
        format!("/sys/fs/cgroup/{path}/memory.peak"),
        format!("/sys/fs/cgroup/memory/{path}/memory.max_usage_in_bytes"),
    ];
    candidates.iter().find_map(|file| {
        std::fs::read_to_string(file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
    })
}

#[async_trait::async_trait]
impl Runtime for Podman {
    async fn version(&self) -> Result<Version> {
        Ok(self.version.clone())
    }

    async fn host_info(&self) -> Result<HostInfo> {
        let op = "read podman's host information";
        let info = self
            .api
            .info()
            .await
            .map_err(|e| self.api_error(op, ObjectKind::Container, None, e))?;
        let host = info.host.ok_or_else(|| Error::Protocol {
            operation: op,
            name: None,
            detail: "the answer has no host section".into(),
        })?;
        let (version, api_version) = info
            .version
            .map(|v| (v.version, v.api_version))
            .unwrap_or_default();
        Ok(HostInfo {
            version: Version {
                version: version.unwrap_or_default(),
                api_version: api_version.unwrap_or_default(),
            },
            rootless: host.security.and_then(|s| s.rootless).unwrap_or(false),
            cgroup_version: CgroupVersion::parse(host.cgroup_version.as_deref().unwrap_or("")),
            cgroup_manager: host.cgroup_manager.unwrap_or_default(),
            network_backend: host.network_backend.unwrap_or_default(),
            oci_runtime: host.oci_runtime.and_then(|r| r.name).unwrap_or_default(),
            kernel: host.kernel.unwrap_or_default(),
        })
    }

    async fn create_network(&self, spec: &NetworkSpec) -> Result<NetworkInfo> {
        let op = "create network";
        spec.validate()?;
        let body = wire::NetworkCreateJson::from_spec(spec);
        let body = serde_json::to_vec(&body).map_err(|e| Error::Protocol {
            operation: op,
            name: Some(spec.name.clone()),
            detail: format!("cannot encode the request: {e}"),
        })?;
        let response = self
            .raw(
                op,
                Some(&spec.name),
                "POST",
                "/networks/create",
                Some(("application/json", &body)),
            )
            .await?;
        if !response.is_success() {
            return Err(from_status(
                op,
                ObjectKind::Network,
                Some(&spec.name),
                response.status,
                &response.body,
            ));
        }
        let created: wire::NetworkJson = decode(op, Some(&spec.name), &response.body)?;
        created.into_info(op)
    }

    async fn inspect_network(&self, name: &str) -> Result<NetworkInfo> {
        let op = "inspect network";
        let n: wire::NetworkJson = self
            .raw_json(
                op,
                ObjectKind::Network,
                Some(name),
                &format!("/networks/{}/json", encode(name)),
            )
            .await?;
        n.into_info(op)
    }

    async fn network_exists(&self, name: &str) -> Result<bool> {
        self.raw_exists(
            "check whether a network exists",
            ObjectKind::Network,
            &format!("/networks/{}/exists", encode(name)),
            name,
        )
        .await
    }

    async fn list_networks(&self) -> Result<Vec<NetworkInfo>> {
        let op = "list networks";
        let list: Vec<wire::NetworkJson> = self
            .raw_json(op, ObjectKind::Network, None, "/networks/json")
            .await?;
        list.into_iter().map(|n| n.into_info(op)).collect()
    }

    async fn remove_network(&self, name: &str) -> Result<()> {
        let op = "remove network";
        self.api
            .networks()
            .get(name)
            .delete()
            .await
            .map(|_| ())
            .map_err(|e| self.api_error(op, ObjectKind::Network, Some(name), e))
    }

    async fn inspect_container(&self, name: &str) -> Result<ContainerInfo> {
        let op = "inspect container";
        let c: wire::ContainerJson = self
            .raw_json(
                op,
                ObjectKind::Container,
                Some(name),
                &format!("/containers/{}/json", encode(name)),
            )
            .await?;
        Ok(c.into_info())
    }

    async fn container_exists(&self, name: &str) -> Result<bool> {
        let op = "check whether a container exists";
        self.api
            .containers()
            .get(name)
            .exists()
            .await
            .map_err(|e| self.api_error(op, ObjectKind::Container, Some(name), e))
    }

    async fn run_health_check(&self, name: &str) -> Result<Health> {
        let op = "run the health check of container";
        let result = self
            .api
            .containers()
            .get(name)
            .healthcheck()
            .await
            .map_err(|e| self.api_error(op, ObjectKind::Container, Some(name), e))?;
        let status = result.status.unwrap_or_default();
        Ok(Health {
            status: HealthStatus::parse(&status),
            failing_streak: result
                .failing_streak
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0),
            log: result
                .log
                .unwrap_or_default()
                .into_iter()
                .map(|l| crate::model::HealthLogEntry {
                    start: l.start.as_deref().and_then(wire::parse_time),
                    end: l.end.as_deref().and_then(wire::parse_time),
                    exit_code: l
                        .exit_code
                        .and_then(|c| i32::try_from(c).ok())
                        .unwrap_or(-1),
                    output: l.output.unwrap_or_default(),
                })
                .collect(),
        })
    }

    async fn exec(&self, name: &str, spec: &ExecSpec) -> Result<ExecOutput> {
        let mut stdout = Vec::new();
        let mut input = spec.stdin_bytes();
        let stdin = input
            .as_mut()
            .map(|bytes| bytes as &mut (dyn tokio::io::AsyncRead + Unpin + Send));
        let mut out = self
            .run_exec("run a command in container", name, spec, stdin, &mut stdout)
            .await?;
        out.stdout = stdout;
        Ok(out)
    }

    async fn exec_streaming(
        &self,
        name: &str,
        spec: &ExecSpec,
        stdin: Option<&mut (dyn tokio::io::AsyncRead + Unpin + Send)>,
        stdout: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    ) -> Result<ExecOutput> {
        self.run_exec("run a command in container", name, spec, stdin, stdout)
            .await
    }

    async fn container_stats(&self, name: &str) -> Result<ContainerStats> {
        let op = "read the statistics of container";
        let info = self.inspect_container(name).await?;
        if !info.state.running {
            return Err(Error::StatsUnavailable {
                container: name.to_owned(),
                reason: format!("it is {}, not running", info.state.status),
            });
        }
        let response = self
            .raw(
                op,
                Some(name),
                "GET",
                &format!("/containers/stats?stream=false&containers={}", encode(name)),
                None,
            )
            .await?;
        if !response.is_success() {
            let e = from_status(
                op,
                ObjectKind::Container,
                Some(name),
                response.status,
                &response.body,
            );
            return Err(match e {
                Error::Rejected { message, .. } | Error::InUse { message, .. } => {
                    Error::StatsUnavailable {
                        container: name.to_owned(),
                        reason: message,
                    }
                }
                other => other,
            });
        }
        let report: wire::StatsReportJson = decode(op, Some(name), &response.body)?;
        if let Some(err) = report.error.filter(|e| !e.is_null()) {
            return Err(Error::StatsUnavailable {
                container: name.to_owned(),
                reason: err.to_string(),
            });
        }
        let stats = report
            .stats
            .into_iter()
            .next()
            .ok_or_else(|| Error::StatsUnavailable {
                container: name.to_owned(),
                reason: "podman returned no sample".into(),
            })?;
        Ok(ContainerStats {
            memory_current: stats.mem_usage,
            memory_peak: memory_peak(info.cgroup_path.as_deref()),
            memory_limit: stats.mem_limit,
            cpu_percent: stats.avg_cpu.unwrap_or(stats.cpu),
            cpu_time: Duration::from_nanos(stats.cpu_nano),
            pids: stats.pids,
        })
    }

    async fn container_logs(&self, name: &str, lines: usize) -> Result<Vec<LogLine>> {
        let op = "read the logs of container";
        // Fail clearly on a missing container before streaming.
        if !self.container_exists(name).await? {
            return Err(Error::NotFound {
                kind: ObjectKind::Container,
                name: name.to_owned(),
            });
        }
        let container = self.api.containers().get(name);
        let log_opts = opts::ContainerLogsOpts::builder()
            .stdout(true)
            .stderr(true)
            .tail(lines.to_string())
            .build();
        let mut stream = container.logs(&log_opts);
        let mut partial: BTreeMap<u8, Vec<u8>> = BTreeMap::new();
        let mut out = Vec::new();
        let mut push = |which: LogStream, bytes: &[u8], partial: &mut BTreeMap<u8, Vec<u8>>| {
            let key = u8::from(which == LogStream::Stderr);
            let buf = partial.entry(key).or_default();
            buf.extend_from_slice(bytes);
            while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=pos).collect();
                let text = String::from_utf8_lossy(&line[..line.len() - 1])
                    .trim_end_matches('\r')
                    .to_owned();
                out.push(LogLine {
                    stream: which,
                    text,
                });
            }
        };
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(TtyChunk::StdOut(b)) => push(LogStream::Stdout, &b, &mut partial),
                Ok(TtyChunk::StdErr(b)) => push(LogStream::Stderr, &b, &mut partial),
                Ok(TtyChunk::StdIn(_)) => {}
                Err(e) => return Err(self.api_error(op, ObjectKind::Container, Some(name), e)),
            }
        }
        for (key, rest) in partial {
            if !rest.is_empty() {
                out.push(LogLine {
                    stream: if key == 1 {
                        LogStream::Stderr
                    } else {
                        LogStream::Stdout
                    },
                    text: String::from_utf8_lossy(&rest).into_owned(),
                });
            }
        }
        Ok(out)
    }

    async fn remove_container(&self, name: &str, force: bool) -> Result<()> {
        let op = "remove container";
        self.api
            .containers()
            .get(name)
            .delete(&opts::ContainerDeleteOpts::builder().force(force).build())
            .await
            .map_err(|e| self.api_error(op, ObjectKind::Container, Some(name), e))
    }

    async fn run_container(&self, spec: &RunSpec) -> Result<()> {
        let op = "run container";
        let name = spec.name();
        let mounts: Vec<serde_json::Value> = spec
            .binds()
            .iter()
            .map(|(source, destination)| {
                serde_json::json!({
                    "type": "bind",
                    "source": source,
                    "destination": destination,
                    "options": ["rbind", "Z"],
                })
            })
            .collect();
        let mut body = serde_json::json!({
            "name": name,
            "image": spec.image(),
            "mounts": mounts,
            "netns": { "nsmode": "none" },
        });
        if !spec.command_args().is_empty() {
            body["command"] = serde_json::json!(spec.command_args());
        }
        if spec.keeps_id() {
            body["userns"] = serde_json::json!({ "nsmode": "keep-id" });
        }
        let body = serde_json::to_vec(&body).map_err(|e| Error::Protocol {
            operation: op,
            name: Some(name.to_owned()),
            detail: format!("cannot encode the container's spec: {e}"),
        })?;
        let created = self
            .raw(
                op,
                Some(name),
                "POST",
                "/containers/create",
                Some(("application/json", &body)),
            )
            .await?;
        if !created.is_success() {
            return Err(from_status(
                op,
                ObjectKind::Container,
                Some(name),
                created.status,
                &created.body,
            ));
        }
        let started = self
            .raw(
                op,
                Some(name),
                "POST",
                &format!("/containers/{}/start", encode(name)),
                None,
            )
            .await?;
        if !started.is_success() {
            let failure = from_status(
                op,
                ObjectKind::Container,
                Some(name),
                started.status,
                &started.body,
            );
            let _ = self.remove_container(name, true).await;
            return Err(failure);
        }
        Ok(())
    }

    async fn image_exists(&self, reference: &str) -> Result<bool> {
        let op = "check whether an image exists";
        self.api
            .images()
            .get(reference)
            .exists()
            .await
            .map_err(|e| self.api_error(op, ObjectKind::Image, Some(reference), e))
    }

    async fn inspect_image(&self, reference: &str) -> Result<ImageInfo> {
        let op = "inspect image";
        let image = self
            .api
            .images()
            .get(reference)
            .inspect()
            .await
            .map_err(|e| self.api_error(op, ObjectKind::Image, Some(reference), e))?;
        let (env, volumes) = image
            .config
            .map(|config| (config.env.unwrap_or_default(), config.volumes))
            .unwrap_or_default();
        Ok(ImageInfo {
            id: image.id.unwrap_or_default(),
            digest: image.digest,
            tags: image.repo_tags.unwrap_or_default(),
            created: image.created.and_then(to_system_time),
            size: image.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
            labels: hash_to_btree(image.labels),
            architecture: image.architecture,
            os: image.os,
            env: env_map(env),
            volumes: {
                let mut paths: Vec<String> = volumes.unwrap_or_default().into_keys().collect();
                paths.sort();
                paths
            },
        })
    }

    async fn pull_image(&self, reference: &str) -> Result<ImageInfo> {
        let op = "pull image";
        let image = ImageRef::parse(reference)?;
        let failed = |reason: String| Error::PullFailed {
            image: reference.to_owned(),
            reason,
        };
        let response = self
            .raw(
                op,
                Some(reference),
                "POST",
                &format!(
                    "/images/pull?reference={}&quiet=true",
                    encode(image.as_str())
                ),
                None,
            )
            .await?;
        if !response.is_success() {
            let body: Option<crate::error::ErrorBody> = serde_json::from_slice(&response.body).ok();
            let reason = body.map_or_else(
                || String::from_utf8_lossy(&response.body).trim().to_owned(),
                |b| b.message,
            );
            return Err(failed(format!("HTTP {}: {reason}", response.status)));
        }
        // Podman answers 200 at once and reports the outcome in the stream of
        // JSON objects that follows: an `error`, or the pulled image's `id`.
        let mut id = None;
        for report in
            serde_json::Deserializer::from_slice(&response.body).into_iter::<wire::PullReportJson>()
        {
            let report = report.map_err(|e| Error::Protocol {
                operation: op,
                name: Some(reference.to_owned()),
                detail: format!("cannot decode the answer: {e}"),
            })?;
            if let Some(error) = report.error.filter(|e| !e.is_empty()) {
                return Err(failed(error));
            }
            id = report.id.filter(|i| !i.is_empty()).or(id);
        }
        let Some(id) = id else {
            return Err(failed("podman reported no image".into()));
        };
        self.inspect_image(&id).await
    }

    async fn tag_image(&self, image: &str, reference: &str) -> Result<()> {
        let op = "tag image";
        let (repo, tag) = crate::image::name_and_tag(reference)?;
        self.api
            .images()
            .get(image)
            .tag(&opts::ImageTagOpts::builder().repo(repo).tag(tag).build())
            .await
            .map_err(|e| self.api_error(op, ObjectKind::Image, Some(image), e))
    }

    async fn list_secrets(&self) -> Result<Vec<SecretInfo>> {
        let op = "list secrets";
        let list = self
            .api
            .secrets()
            .list()
            .await
            .map_err(|e| self.api_error(op, ObjectKind::Secret, None, e))?;
        Ok(list.into_iter().map(secret_info).collect())
    }

    async fn inspect_secret(&self, name: &str) -> Result<SecretInfo> {
        let op = "inspect secret";
        let report = self
            .api
            .secrets()
            .get(name)
            .inspect()
            .await
            .map_err(|e| self.api_error(op, ObjectKind::Secret, Some(name), e))?;
        Ok(secret_info(report))
    }

    async fn secret_exists(&self, name: &str) -> Result<bool> {
        self.raw_exists(
            "check whether a secret exists",
            ObjectKind::Secret,
            &format!("/secrets/{}/exists", encode(name)),
            name,
        )
        .await
    }

    async fn remove_secret(&self, name: &str) -> Result<()> {
        let op = "remove secret";
        self.api
            .secrets()
            .get(name)
            .delete()
            .await
            .map_err(|e| self.api_error(op, ObjectKind::Secret, Some(name), e))
    }

    async fn create_secret(
        &self,
        name: &str,
        value: &SecretValue,
        options: &SecretOptions,
    ) -> Result<SecretInfo> {
        let op = "create secret";
        check_secret(name, value)?;
        let mut query = format!("name={}", encode(name));
        if options.replace {
            query.push_str("&replace=true");
        }
        if !options.labels.is_empty() {
            let labels = serde_json::to_string(&options.labels).map_err(|e| Error::Protocol {
                operation: op,
                name: Some(name.to_owned()),
                detail: format!("cannot encode the labels: {e}"),
            })?;
            query.push_str("&labels=");
            query.push_str(&encode(&labels));
        }
        // The value is the raw request body, exactly its bytes. An octet-stream
        // type keeps podman from parsing the body as a form.
        let response = self
            .raw(
                op,
                Some(name),
                "POST",
                &format!("/secrets/create?{query}"),
                Some(("application/octet-stream", value.expose())),
            )
            .await?;
        if !response.is_success() {
            return Err(from_status(
                op,
                ObjectKind::Secret,
                Some(name),
                response.status,
                &response.body,
            ));
        }
        self.inspect_secret(name).await
    }

    async fn read_secret(&self, name: &str) -> Result<SecretValue> {
        let op = "read secret";
        let response = self
            .raw(
                op,
                Some(name),
                "GET",
                &format!("/secrets/{}/json?showsecret=true", encode(name)),
                None,
            )
            .await?;
        if !response.is_success() {
            return Err(from_status(
                op,
                ObjectKind::Secret,
                Some(name),
                response.status,
                &response.body,
            ));
        }
        let data: wire::SecretDataJson = decode(op, Some(name), &response.body)?;
        let Some(value) = data.secret_data else {
            return Err(Error::Protocol {
                operation: op,
                name: Some(name.to_owned()),
                detail: "the answer has no SecretData (podman older than 4.5?)".into(),
            });
        };
        let value = SecretValue::new(value.into_bytes());
        // Podman's API sends the value as a JSON string: bytes that are not UTF-8
        // arrive as U+FFFD, and the original cannot be recovered.
        if value
            .expose()
            .windows(3)
            .any(|w| w == "\u{fffd}".as_bytes())
        {
            return Err(Error::InvalidSecret {
                name: name.to_owned(),
                reason: "its value holds bytes that are not UTF-8 (or U+FFFD), which podman's API cannot return exactly; read it with `podman secret inspect --showsecret`".into(),
            });
        }
        Ok(value)
    }

    async fn events(&self, filter: &EventFilter) -> Result<EventStream> {
        let op = "follow container events";
        let mut filters: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        filters.insert("type", vec!["container".into()]);
        filters.insert(
            "event",
            filter
                .effective_types()
                .iter()
                .map(|t| t.podman_name().to_owned())
                .collect(),
        );
        if !filter.containers.is_empty() {
            filters.insert("container", filter.containers.clone());
        }
        let filters = serde_json::to_string(&filters).map_err(|e| Error::Protocol {
            operation: op,
            name: None,
            detail: format!("cannot encode the filters: {e}"),
        })?;
        let mut target = format!(
            "{}/events?stream=true&filters={}",
            self.native,
            encode(&filters)
        );
        if let Some(since) = filter.since {
            let secs = since
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let _ = write!(target, "&since={secs}");
        }
        let (status, mut body) = self
            .http
            .open("GET", &target, None)
            .await
            .map_err(|e| self.connection_error(op, None, e))?;
        if !(200..300).contains(&status) {
            let mut all = Vec::new();
            while let Ok(Some(piece)) = body.next_piece().await {
                all.extend_from_slice(&piece);
            }
            return Err(from_status(op, ObjectKind::Container, None, status, &all));
        }
        let socket = self.socket().to_owned();
        let filter = filter.clone();
        // The connection is owned by the stream, so it lives as long as the caller
        // reads; a clone of the private service (if any) keeps that alive too.
        let keep_alive = self.service.clone();
        let stream = futures_util::stream::unfold(
            (body, Vec::<u8>::new(), false, keep_alive),
            move |(mut body, mut buf, mut ended, keep_alive)| {
                let socket = socket.clone();
                let filter = filter.clone();
                async move {
                    loop {
                        if let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                            let line: Vec<u8> = buf.drain(..=pos).collect();
                            let line = line.trim_ascii();
                            if line.is_empty() {
                                continue;
                            }
                            match wire::parse_event(line) {
                                Ok(Some(event)) if filter.matches(&event) => {
                                    return Some((Ok(event), (body, buf, ended, keep_alive)));
                                }
                                Ok(_) => continue,
                                Err(detail) => {
                                    let e = Error::Protocol {
                                        operation: op,
                                        name: None,
                                        detail,
                                    };
                                    return Some((Err(e), (body, buf, ended, keep_alive)));
                                }
                            }
                        }
                        if ended {
                            return None;
                        }
                        match body.next_piece().await {
                            Ok(Some(piece)) => buf.extend_from_slice(&piece),
                            Ok(None) => {
                                ended = true;
                                buf.push(b'\n');
                            }
                            Err(e) => {
                                ended = true;
                                let e = Error::Connection {
                                    socket: socket.clone(),
                                    operation: op,
                                    name: None,
                                    source: Box::new(e),
                                };
                                return Some((Err(e), (body, Vec::new(), ended, keep_alive)));
                            }
                        }
                    }
                }
            },
        );
        Ok(Box::pin(stream))
    }
}

fn secret_info(report: podman_api::models::SecretInfoReport) -> SecretInfo {
    let spec = report.spec;
    SecretInfo {
        id: report.id.unwrap_or_default(),
        name: spec
            .as_ref()
            .and_then(|s| s.name.clone())
            .unwrap_or_default(),
        driver: spec
            .as_ref()
            .and_then(|s| s.driver.as_ref())
            .and_then(|d| d.name.clone())
            .unwrap_or_default(),
        labels: hash_to_btree(spec.and_then(|s| s.labels)),
        created_at: report.created_at.and_then(to_system_time),
        updated_at: report.updated_at.and_then(to_system_time),
    }
}

/// What podman would refuse, said before anything is sent.
pub(crate) fn check_secret(name: &str, value: &SecretValue) -> Result<()> {
    let invalid = |reason: String| Error::InvalidSecret {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("the name is empty".into()));
    }
    if value.is_empty() {
        return Err(invalid(
            "the value is empty; podman stores no empty secret".into(),
        ));
    }
    if value.len() > MAX_SECRET_LEN {
        return Err(invalid(format!(
            "the value is {} bytes; podman stores at most {MAX_SECRET_LEN}",
            value.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ping_head_gives_both_versions() {
        let headers = ServiceHeaders {
            server: Some("Libpod/5.4.2 (linux)".into()),
            libpod_api_version: Some("5.4.2".into()),
        };
        assert_eq!(
            announced_version(&headers),
            Some(Version {
                version: "5.4.2".into(),
                api_version: "5.4.2".into()
            })
        );
        // Without a Server header the API version stands for the release.
        let headers = ServiceHeaders {
            server: None,
            libpod_api_version: Some("4.9.3".into()),
        };
        assert_eq!(announced_version(&headers).unwrap().version, "4.9.3");
        // A service that does not say is asked.
        assert_eq!(announced_version(&ServiceHeaders::default()), None);
    }

    #[test]
    fn an_image_environment_is_a_map_whose_last_value_wins() {
        let env = env_map(vec![
            "PATH=/usr/bin".into(),
            "PGDATA=/var/lib/postgresql/18/docker".into(),
            "EMPTY".into(),
            "A=b=c".into(),
            "PATH=/bin".into(),
        ]);
        assert_eq!(env["PATH"], "/bin");
        assert_eq!(env["PGDATA"], "/var/lib/postgresql/18/docker");
        assert_eq!(env["EMPTY"], "");
        assert_eq!(env["A"], "b=c");
        assert_eq!(env.len(), 4);
    }
}
