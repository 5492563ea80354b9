//! The `[Container]` section of `.container` files.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::model::{Body, RawEntry, Reader, Writer, private};
use crate::naming::UnitKind;
use crate::syntax::{EntryError, UnitFile};
use crate::values::{
    AutoUpdate, Duration, HealthInterval, HealthOnFailure, KeyValue, Notify, PullPolicy, Secret,
    VolumeMount,
};
use crate::words;

/// The `[Container]` section: what `podman run` the service performs.
///
/// Keys the model does not type (`AddDevice=`, `SecurityLabelType=`, ...) are kept in
/// [`Container::other`] as written.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Container {
    /// `Image=`: the image, or a `.image`/`.build` file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// `ContainerName=`: podman's name for the container (default `systemd-%N`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    /// `Pod=`: the `.pod` file of the pod to join (podman 5.0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// `Network=`: a `.network` file (which adds a dependency on its service), a
    /// podman network name, `host`, `none`, ... One per line.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub network: Vec<String>,
    /// `NetworkAlias=`: extra DNS names on the networks (podman 5.2).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub network_alias: Vec<String>,
    /// `IP=`.
    #[serde(rename = "IP", skip_serializing_if = "Option::is_none")]
    pub ip: Option<Ipv4Addr>,
    /// `IP6=`.
    #[serde(rename = "IP6", skip_serializing_if = "Option::is_none")]
    pub ip6: Option<Ipv6Addr>,
    /// `HostName=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_name: Option<String>,
    /// `PublishPort=`: `[[IP:]HOST:]CONTAINER[/PROTO]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub publish_port: Vec<String>,
    /// `DNS=`.
    #[serde(rename = "DNS", skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    /// `DNSSearch=`.
    #[serde(rename = "DNSSearch", skip_serializing_if = "Vec::is_empty")]
    pub dns_search: Vec<String>,
    /// `DNSOption=`.
    #[serde(rename = "DNSOption", skip_serializing_if = "Vec::is_empty")]
    pub dns_option: Vec<String>,
    /// `AddHost=`: `HOST:IP` entries for `/etc/hosts` (podman 5.3).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub add_host: Vec<String>,
    /// `User=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `Group=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `GroupAdd=` (podman 5.1).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub group_add: Vec<String>,
    /// `UserNS=`.
    #[serde(rename = "UserNS", skip_serializing_if = "Option::is_none")]
    pub user_ns: Option<String>,
    /// `Environment=`: variables; never put passwords here, use [`Container::secret`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub environment: Vec<KeyValue>,
    /// `EnvironmentFile=`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub environment_file: Vec<String>,
    /// `Secret=`: podman secrets as variables or files.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secret: Vec<Secret>,
    /// `Volume=`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volume: Vec<VolumeMount>,
    /// `Mount=`: `type=...,source=...,destination=...`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mount: Vec<String>,
    /// `Tmpfs=`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tmpfs: Vec<String>,
    /// `ShmSize=`: size of `/dev/shm`, such as `128m` (podman 4.7).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<String>,
    /// `Memory=`: memory limit (podman 5.5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// `WorkingDir=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// `Entrypoint=` (podman 5.0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<String>,
    /// `Exec=`: the command line, quoted as systemd reads it (see
    /// [`Container::set_exec`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exec: Option<String>,
    /// `HealthCmd=`: the health check, run by a shell.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_cmd: Option<String>,
    /// `HealthInterval=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_interval: Option<HealthInterval>,
    /// `HealthTimeout=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_timeout: Option<Duration>,
    /// `HealthRetries=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_retries: Option<u32>,
    /// `HealthStartPeriod=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_start_period: Option<Duration>,
    /// `HealthOnFailure=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_on_failure: Option<HealthOnFailure>,
    /// `HealthStartupCmd=`: the check during startup.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_startup_cmd: Option<String>,
    /// `HealthStartupInterval=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_startup_interval: Option<HealthInterval>,
    /// `HealthStartupTimeout=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_startup_timeout: Option<Duration>,
    /// `HealthStartupRetries=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_startup_retries: Option<u32>,
    /// `HealthStartupSuccess=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_startup_success: Option<u32>,
    /// `HealthLogDestination=` (podman 5.4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_log_destination: Option<String>,
    /// `HealthMaxLogCount=` (podman 5.4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_max_log_count: Option<u32>,
    /// `HealthMaxLogSize=` (podman 5.4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_max_log_size: Option<u32>,
    /// `Notify=`: `healthy` makes the service ready when the health check passes
    /// (podman 5.0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notify: Option<Notify>,
    /// `AutoUpdate=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_update: Option<AutoUpdate>,
    /// `Pull=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull: Option<PullPolicy>,
    /// `Label=`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub label: Vec<KeyValue>,
    /// `Annotation=`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub annotation: Vec<KeyValue>,
    /// `ReadOnly=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// `NoNewPrivileges=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_new_privileges: Option<bool>,
    /// `AddCapability=`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub add_capability: Vec<String>,
    /// `DropCapability=`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drop_capability: Vec<String>,
    /// `LogDriver=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_driver: Option<String>,
    /// `StopSignal=` (podman 5.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// `StopTimeout=`: seconds to wait after the stop signal (podman 5.0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<u64>,
    /// `PodmanArgs=`: extra `podman run` options, one line each, quoted as systemd
    /// reads them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub podman_args: Vec<String>,
    /// `ServiceName=`: the service's name without `.service` (podman 5.3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// Any other key, as written.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other: Vec<RawEntry>,
}

impl Container {
    /// A container of `image`.
    pub fn new(image: impl Into<String>) -> Self {
        Self {
            image: Some(image.into()),
            ..Self::default()
        }
    }

    /// Sets `Exec=` from words, quoting them as needed.
    pub fn set_exec<I, S>(&mut self, args: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.exec = Some(words::join(args));
    }

    /// The words of `Exec=`.
    ///
    /// # Errors
    /// [`words::WordsError`] when the line has an escape the generator rejects.
    pub fn exec_args(&self) -> Result<Vec<String>, words::WordsError> {
        self.exec.as_deref().map_or(Ok(Vec::new()), words::split)
    }

    /// Adds a `PodmanArgs=` line from words, quoting them as needed.
    pub fn push_podman_args<I, S>(&mut self, args: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.podman_args.push(words::join(args));
    }
}

impl Body for Container {
    const KIND: UnitKind = UnitKind::Container;
}

impl private::Sealed for Container {
    fn read_section(file: &UnitFile, path: &Path) -> Result<Self, Error> {
        let r = Reader {
            file: path,
            section: "Container",
        };
        let mut c = Self::default();
        for e in file.entries("Container") {
            match e.key() {
                "Image" => Reader::text(&mut c.image, e),
                "ContainerName" => Reader::text(&mut c.container_name, e),
                "Pod" => Reader::text(&mut c.pod, e),
                "Network" => Reader::raw_line(&mut c.network, e),
                "NetworkAlias" => Reader::raw_line(&mut c.network_alias, e),
                "IP" => r.single(&mut c.ip, e)?,
                "IP6" => r.single(&mut c.ip6, e)?,
                "HostName" => Reader::text(&mut c.host_name, e),
                "PublishPort" => Reader::raw_line(&mut c.publish_port, e),
                "DNS" => Reader::raw_line(&mut c.dns, e),
                "DNSSearch" => Reader::raw_line(&mut c.dns_search, e),
                "DNSOption" => Reader::raw_line(&mut c.dns_option, e),
                "AddHost" => Reader::raw_line(&mut c.add_host, e),
                "User" => Reader::text(&mut c.user, e),
                "Group" => Reader::text(&mut c.group, e),
                "GroupAdd" => Reader::raw_line(&mut c.group_add, e),
                "UserNS" => Reader::text(&mut c.user_ns, e),
                "Environment" => r.words(&mut c.environment, e)?,
                "EnvironmentFile" => r.words(&mut c.environment_file, e)?,
                "Secret" => r.words(&mut c.secret, e)?,
                "Volume" => r.line(&mut c.volume, e)?,
                "Mount" => r.words(&mut c.mount, e)?,
                "Tmpfs" => Reader::raw_line(&mut c.tmpfs, e),
                "ShmSize" => Reader::text(&mut c.shm_size, e),
                "Memory" => Reader::text(&mut c.memory, e),
                "WorkingDir" => Reader::text(&mut c.working_dir, e),
                "Entrypoint" => Reader::text(&mut c.entrypoint, e),
                "Exec" => Reader::raw_text(&mut c.exec, e),
                "HealthCmd" => Reader::text(&mut c.health_cmd, e),
                "HealthInterval" => r.single(&mut c.health_interval, e)?,
                "HealthTimeout" => r.single(&mut c.health_timeout, e)?,
                "HealthRetries" => r.single(&mut c.health_retries, e)?,
                "HealthStartPeriod" => r.single(&mut c.health_start_period, e)?,
                "HealthOnFailure" => r.single(&mut c.health_on_failure, e)?,
                "HealthStartupCmd" => Reader::text(&mut c.health_startup_cmd, e),
                "HealthStartupInterval" => r.single(&mut c.health_startup_interval, e)?,
                "HealthStartupTimeout" => r.single(&mut c.health_startup_timeout, e)?,
                "HealthStartupRetries" => {
                    r.single(&mut c.health_startup_retries, e)?;
                }
                "HealthStartupSuccess" => {
                    r.single(&mut c.health_startup_success, e)?;
                }
                "HealthLogDestination" => Reader::text(&mut c.health_log_destination, e),
                "HealthMaxLogCount" => {
                    r.single(&mut c.health_max_log_count, e)?;
                }
                "HealthMaxLogSize" => {
                    r.single(&mut c.health_max_log_size, e)?;
                }
                "Notify" => r.single(&mut c.notify, e)?,
                "AutoUpdate" => r.single(&mut c.auto_update, e)?,
                "Pull" => r.single(&mut c.pull, e)?,
                "Label" => r.words(&mut c.label, e)?,
                "Annotation" => r.words(&mut c.annotation, e)?,
                "ReadOnly" => r.boolean(&mut c.read_only, e)?,
                "NoNewPrivileges" => r.boolean(&mut c.no_new_privileges, e)?,
                "AddCapability" => Reader::names(&mut c.add_capability, e),
                "DropCapability" => Reader::names(&mut c.drop_capability, e),
                "LogDriver" => Reader::text(&mut c.log_driver, e),
                "StopSignal" => Reader::text(&mut c.stop_signal, e),
                "StopTimeout" => r.single(&mut c.stop_timeout, e)?,
                "PodmanArgs" => Reader::raw_line(&mut c.podman_args, e),
                "ServiceName" => Reader::text(&mut c.service_name, e),
                key => c.other.push(RawEntry::new(key, e.value())),
            }
        }
        Ok(c)
    }

    fn write_section(&self) -> Result<Vec<(String, String)>, EntryError> {
        let mut writer = Writer::new();
        let w = &mut writer;
        let Self {
            image,
            container_name,
            pod,
            network,
            network_alias,
            ip,
            ip6,
            host_name,
            publish_port,
            dns,
            dns_search,
            dns_option,
            add_host,
            user,
            group,
            group_add,
            user_ns,
            environment,
            environment_file,
            secret,
            volume,
            mount,
            tmpfs,
            shm_size,
            memory,
            working_dir,
            entrypoint,
            exec,
            health_cmd,
            health_interval,
            health_timeout,
            health_retries,
            health_start_period,
            health_on_failure,
            health_startup_cmd,
            health_startup_interval,
            health_startup_timeout,
            health_startup_retries,
            health_startup_success,
            health_log_destination,
            health_max_log_count,
            health_max_log_size,
            notify,
            auto_update,
            pull,
            label,
            annotation,
            read_only,
            no_new_privileges,
            add_capability,
            drop_capability,
            log_driver,
            stop_signal,
            stop_timeout,
            podman_args,
            service_name,
            other,
        } = self;
        w.single("Image", image.as_ref());
        w.single("ContainerName", container_name.as_ref());
        w.single("Pod", pod.as_ref());
        w.lines("Network", network);
        w.lines("NetworkAlias", network_alias);
        w.single("IP", ip.as_ref());
        w.single("IP6", ip6.as_ref());
        w.single("HostName", host_name.as_ref());
        w.lines("PublishPort", publish_port);
        w.lines("DNS", dns);
        w.lines("DNSSearch", dns_search);
        w.lines("DNSOption", dns_option);
        w.lines("AddHost", add_host);
        w.single("User", user.as_ref());
        w.single("Group", group.as_ref());
        w.lines("GroupAdd", group_add);
        w.single("UserNS", user_ns.as_ref());
        w.words("Environment", environment);
        w.words("EnvironmentFile", environment_file);
        w.words("Secret", secret);
        w.lines("Volume", volume);
        w.words("Mount", mount);
        w.lines("Tmpfs", tmpfs);
        w.single("ShmSize", shm_size.as_ref());
        w.single("Memory", memory.as_ref());
        w.single("WorkingDir", working_dir.as_ref());
        w.single("Entrypoint", entrypoint.as_ref());
        w.raw("Exec", exec.as_ref());
        w.single("HealthCmd", health_cmd.as_ref());
        w.single("HealthInterval", health_interval.as_ref());
        w.single("HealthTimeout", health_timeout.as_ref());
        w.single("HealthRetries", health_retries.as_ref());
        w.single("HealthStartPeriod", health_start_period.as_ref());
        w.single("HealthOnFailure", health_on_failure.as_ref());
        w.single("HealthStartupCmd", health_startup_cmd.as_ref());
        w.single("HealthStartupInterval", health_startup_interval.as_ref());
        w.single("HealthStartupTimeout", health_startup_timeout.as_ref());
        w.single("HealthStartupRetries", health_startup_retries.as_ref());
        w.single("HealthStartupSuccess", health_startup_success.as_ref());
        w.single("HealthLogDestination", health_log_destination.as_ref());
        w.single("HealthMaxLogCount", health_max_log_count.as_ref());
        w.single("HealthMaxLogSize", health_max_log_size.as_ref());
        w.single("Notify", notify.as_ref());
        w.single("AutoUpdate", auto_update.as_ref());
        w.single("Pull", pull.as_ref());
        w.words("Label", label);
        w.words("Annotation", annotation);
        w.boolean("ReadOnly", *read_only);
        w.boolean("NoNewPrivileges", *no_new_privileges);
        w.names("AddCapability", add_capability);
        w.names("DropCapability", drop_capability);
        w.single("LogDriver", log_driver.as_ref());
        w.single("StopSignal", stop_signal.as_ref());
        w.single("StopTimeout", stop_timeout.as_ref());
        w.lines("PodmanArgs", podman_args);
        w.single("ServiceName", service_name.as_ref());
        w.other(other);
        writer.into_entries()
    }
}
