//! Narrow models of podman's JSON answers: only the fields this crate reports,
//! each optional or defaulted, and tolerant of both API 4 and API 5 shapes (the
//! fields podman 5 changed type, such as `Config.Entrypoint`, are not read at
//! all).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::cidr::parse_cidr;
use crate::error::{Error, Result};
use crate::model::{
    ContainerEvent, ContainerInfo, ContainerNetwork, ContainerState, ContainerStatus, EventKind,
    Health, HealthLogEntry, HealthStatus, NetworkInfo, NetworkMember, NetworkSpec, NetworkSubnet,
};

/// A podman timestamp; `None` for Go's zero time (`0001-01-01T00:00:00Z`) and
/// anything before 1970.
pub(crate) fn parse_time(text: &str) -> Option<SystemTime> {
    let t = chrono::DateTime::parse_from_rfc3339(text).ok()?;
    (t.timestamp() > 0).then(|| SystemTime::from(t))
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

/// The answer to `/version`: its top-level `ApiVersion` is the Docker-compatible
/// API's; libpod's is in the "Podman Engine" component.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct VersionJson {
    pub(crate) version: String,
    #[serde(default)]
    components: Vec<ComponentJson>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ComponentJson {
    #[serde(default)]
    name: String,
    #[serde(default)]
    details: BTreeMap<String, serde_json::Value>,
}

impl VersionJson {
    pub(crate) fn libpod_api_version(&self) -> Option<String> {
        self.components
            .iter()
            .find(|c| c.name == "Podman Engine")
            .and_then(|c| c.details.get("APIVersion"))
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct SecretDataJson {
    #[serde(rename = "SecretData")]
    pub(crate) secret_data: Option<String>,
}

// --- networks ---------------------------------------------------------------------

#[derive(Debug, Serialize)]
pub(crate) struct NetworkCreateJson<'a> {
    name: &'a str,
    driver: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subnets: Vec<SubnetJson>,
    internal: bool,
    dns_enabled: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    network_dns_servers: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: &'a BTreeMap<String, String>,
}

impl<'a> NetworkCreateJson<'a> {
    pub(crate) fn from_spec(spec: &'a NetworkSpec) -> Self {
        let NetworkSpec {
            name,
            subnet,
            gateway,
            labels,
            dns,
            internal,
        } = spec;
        Self {
            name,
            driver: "bridge",
            subnets: subnet
                .iter()
                .map(|s| SubnetJson {
                    subnet: s.to_string(),
                    gateway: gateway.map(|g| g.to_string()),
                })
                .collect(),
            internal: *internal,
            // As `podman network create` does: containers find each other by name.
            dns_enabled: true,
            network_dns_servers: dns.iter().map(ToString::to_string).collect(),
            labels,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct SubnetJson {
    subnet: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gateway: Option<String>,
}

#[derive(Debug, Deserialize)]
struct MemberSubnetJson {
    ipnet: String,
}

#[derive(Debug, Deserialize)]
struct InterfaceJson {
    #[serde(default)]
    subnets: Option<Vec<MemberSubnetJson>>,
}

#[derive(Debug, Deserialize)]
struct MemberJson {
    #[serde(default)]
    name: String,
    #[serde(default)]
    interfaces: Option<BTreeMap<String, InterfaceJson>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct NetworkJson {
    name: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    driver: String,
    #[serde(default)]
    network_interface: Option<String>,
    #[serde(default)]
    subnets: Option<Vec<SubnetJson>>,
    #[serde(default)]
    network_dns_servers: Option<Vec<String>>,
    #[serde(default)]
    dns_enabled: bool,
    #[serde(default)]
    internal: bool,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    containers: Option<BTreeMap<String, MemberJson>>,
}

impl NetworkJson {
    pub(crate) fn into_info(self, operation: &'static str) -> Result<NetworkInfo> {
        let name = self.name;
        let bad = |what: &str, value: &str| Error::Protocol {
            operation,
            name: Some(name.clone()),
            detail: format!("{what} {value:?} is not valid"),
        };
        let mut subnets = Vec::new();
        for s in self.subnets.unwrap_or_default() {
            let subnet = parse_cidr(&s.subnet).map_err(|_| bad("subnet", &s.subnet))?;
            let gateway = match non_empty(s.gateway) {
                Some(g) => Some(g.parse::<IpAddr>().map_err(|_| bad("gateway", &g))?),
                None => None,
            };
            subnets.push(NetworkSubnet { subnet, gateway });
        }
        let mut dns_servers = Vec::new();
        for d in self.network_dns_servers.unwrap_or_default() {
            dns_servers.push(d.parse().map_err(|_| bad("DNS server", &d))?);
        }
        let containers = self
            .containers
            .unwrap_or_default()
            .into_iter()
            .map(|(id, m)| {
                let addresses = m
                    .interfaces
                    .unwrap_or_default()
                    .into_values()
                    .flat_map(|i| i.subnets.unwrap_or_default())
                    .filter_map(|s| parse_cidr(&s.ipnet).ok())
                    .collect();
                (
                    id,
                    NetworkMember {
                        name: m.name,
                        addresses,
                    },
                )
            })
            .collect();
        Ok(NetworkInfo {
            name: name.clone(),
            id: self.id,
            driver: self.driver,
            interface: non_empty(self.network_interface),
            subnets,
            dns_servers,
            dns_enabled: self.dns_enabled,
            internal: self.internal,
            labels: self.labels.unwrap_or_default(),
            containers,
        })
    }
}

// --- containers -------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ContainerJson {
    id: String,
    name: String,
    #[serde(default)]
    image_name: String,
    #[serde(default)]
    image: String,
    state: StateJson,
    #[serde(default)]
    restart_count: i64,
    #[serde(default)]
    network_settings: Option<NetworkSettingsJson>,
    #[serde(default)]
    config: Option<ConfigJson>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ConfigJson {
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StateJson {
    #[serde(default)]
    status: String,
    #[serde(default)]
    running: bool,
    #[serde(default)]
    pid: i64,
    #[serde(default)]
    exit_code: i64,
    #[serde(default)]
    started_at: Option<String>,
    #[serde(default)]
    finished_at: Option<String>,
    #[serde(default, rename = "OOMKilled")]
    oom_killed: bool,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    health: Option<HealthJson>,
    #[serde(default)]
    cgroup_path: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HealthJson {
    #[serde(default)]
    status: String,
    #[serde(default)]
    failing_streak: i64,
    #[serde(default)]
    log: Option<Vec<HealthLogJson>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HealthLogJson {
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    end: Option<String>,
    #[serde(default)]
    exit_code: i64,
    #[serde(default)]
    output: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NetworkSettingsJson {
    #[serde(default)]
    networks: Option<BTreeMap<String, AttachmentJson>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AttachmentJson {
    #[serde(default, rename = "IPAddress")]
    ip_address: String,
    #[serde(default, rename = "IPPrefixLen")]
    ip_prefix_len: i64,
    #[serde(default)]
    gateway: String,
    #[serde(default)]
    mac_address: String,
    #[serde(default)]
    aliases: Option<Vec<String>>,
}

fn clamp_i32(n: i64) -> i32 {
    i32::try_from(n).unwrap_or(if n < 0 { i32::MIN } else { i32::MAX })
}

impl ContainerJson {
    pub(crate) fn into_info(self) -> ContainerInfo {
        let s = self.state;
        let health = s.health.filter(|h| !h.status.is_empty()).map(|h| Health {
            status: HealthStatus::parse(&h.status),
            failing_streak: u32::try_from(h.failing_streak).unwrap_or(0),
            log: h
                .log
                .unwrap_or_default()
                .into_iter()
                .map(|l| HealthLogEntry {
                    start: l.start.as_deref().and_then(parse_time),
                    end: l.end.as_deref().and_then(parse_time),
                    exit_code: clamp_i32(l.exit_code),
                    output: l.output,
                })
                .collect(),
        });
        let networks = self
            .network_settings
            .and_then(|n| n.networks)
            .unwrap_or_default()
            .into_iter()
            .map(|(name, a)| {
                (
                    name,
                    ContainerNetwork {
                        ip: a.ip_address.parse().ok(),
                        prefix_len: u8::try_from(a.ip_prefix_len).unwrap_or(0),
                        gateway: a.gateway.parse().ok(),
                        mac: non_empty(Some(a.mac_address)),
                        aliases: a.aliases.unwrap_or_default(),
                    },
                )
            })
            .collect();
        ContainerInfo {
            id: self.id,
            name: self.name,
            image: self.image_name,
            image_id: self.image,
            state: ContainerState {
                status: ContainerStatus::parse(&s.status),
                running: s.running,
                pid: u32::try_from(s.pid).ok().filter(|p| *p != 0),
                exit_code: clamp_i32(s.exit_code),
                started_at: s.started_at.as_deref().and_then(parse_time),
                finished_at: s.finished_at.as_deref().and_then(parse_time),
                oom_killed: s.oom_killed,
                error: non_empty(s.error),
            },
            health,
            restart_count: u32::try_from(self.restart_count).unwrap_or(0),
            networks,
            labels: self.config.and_then(|c| c.labels).unwrap_or_default(),
            cgroup_path: non_empty(s.cgroup_path),
        }
    }
}

// --- stats ------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct StatsReportJson {
    #[serde(default)]
    pub(crate) error: Option<serde_json::Value>,
    #[serde(default)]
    pub(crate) stats: Vec<StatsJson>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct StatsJson {
    #[serde(default)]
    pub(crate) mem_usage: u64,
    #[serde(default)]
    pub(crate) mem_limit: u64,
    #[serde(default, rename = "CPU")]
    pub(crate) cpu: f64,
    #[serde(default, rename = "AvgCPU")]
    pub(crate) avg_cpu: Option<f64>,
    #[serde(default, rename = "CPUNano")]
    pub(crate) cpu_nano: u64,
    #[serde(default, rename = "PIDs")]
    pub(crate) pids: u64,
}

// --- images -----------------------------------------------------------------------

/// One object of the stream podman answers an image pull with.
#[derive(Debug, Deserialize)]
pub(crate) struct PullReportJson {
    #[serde(default)]
    pub(crate) error: Option<String>,
    #[serde(default)]
    pub(crate) id: Option<String>,
}

// --- events -----------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct EventJson {
    #[serde(rename = "Type", default)]
    kind: String,
    #[serde(rename = "Action", default)]
    action: String,
    #[serde(rename = "Actor", default)]
    actor: Option<ActorJson>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    time: i64,
    #[serde(rename = "timeNano", default)]
    time_nano: Option<i64>,
    #[serde(rename = "HealthStatus", default)]
    health_status: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ActorJson {
    #[serde(rename = "ID", default)]
    id: String,
    #[serde(rename = "Attributes", default)]
    attributes: BTreeMap<String, String>,
}

/// One line of podman's event stream: `Ok(None)` for an event this crate does
/// not report (not a container, another action).
pub(crate) fn parse_event(line: &[u8]) -> Result<Option<ContainerEvent>, String> {
    let e: EventJson =
        serde_json::from_slice(line).map_err(|err| format!("cannot decode an event: {err}"))?;
    if e.kind != "container" {
        return Ok(None);
    }
    let actor = e.actor.unwrap_or(ActorJson {
        id: String::new(),
        attributes: BTreeMap::new(),
    });
    let kind = match e.action.as_str() {
        "health_status" => {
            let status = e
                .health_status
                .or_else(|| actor.attributes.get("health_status").cloned())
                .unwrap_or_default();
            EventKind::HealthStatus(HealthStatus::parse(&status))
        }
        "died" => EventKind::Died {
            exit_code: actor
                .attributes
                .get("containerExitCode")
                .and_then(|c| c.parse().ok()),
        },
        "restart" => EventKind::Restarted,
        "start" => EventKind::Started,
        "stop" => EventKind::Stopped,
        "remove" => EventKind::Removed,
        _ => return Ok(None),
    };
    let time = match e.time_nano.and_then(|n| u64::try_from(n).ok()) {
        Some(nanos) if nanos > 0 => SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos),
        _ => SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(e.time).unwrap_or(0)),
    };
    let container_id = if actor.id.is_empty() {
        e.id.unwrap_or_default()
    } else {
        actor.id
    };
    Ok(Some(ContainerEvent {
        time,
        container_id,
        container_name: actor.attributes.get("name").cloned().unwrap_or_default(),
        kind,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_podman5_health_event() {
        let line = br#"{"status":"health_status","id":"7d7c","from":"img","Type":"container","Action":"health_status","Actor":{"ID":"7d7c","Attributes":{"image":"img","name":"pg","podId":""}},"scope":"local","time":1795626522,"timeNano":1795626522665432026,"HealthStatus":"healthy"}"#;
        let e = parse_event(line).unwrap().unwrap();
        assert_eq!(e.container_name, "pg");
        assert_eq!(e.container_id, "7d7c");
        assert_eq!(e.kind, EventKind::HealthStatus(HealthStatus::Healthy));
        assert_eq!(
            e.time,
            SystemTime::UNIX_EPOCH + Duration::from_nanos(1_795_626_522_665_432_026)
        );
    }

    #[test]
    fn parses_died_with_exit_code_and_skips_others() {
        let died = br#"{"Type":"container","Action":"died","Actor":{"ID":"ab","Attributes":{"name":"pg","containerExitCode":"137"}},"time":5}"#;
        let e = parse_event(died).unwrap().unwrap();
        assert_eq!(
            e.kind,
            EventKind::Died {
                exit_code: Some(137)
            }
        );
        assert_eq!(e.time, SystemTime::UNIX_EPOCH + Duration::from_secs(5));
        let image =
            br#"{"Type":"image","Action":"pull","Actor":{"ID":"x","Attributes":{}},"time":1}"#;
        assert_eq!(parse_event(image).unwrap(), None);
        let exec = br#"{"Type":"container","Action":"exec_died","Actor":{"ID":"x","Attributes":{}},"time":1}"#;
        assert_eq!(parse_event(exec).unwrap(), None);
        assert!(parse_event(b"{not json").is_err());
    }

    #[test]
    fn decodes_both_container_shapes() {
        // API 5 (list entrypoint, named stop signal) and API 4 shapes: neither
        // field is read, so both decode.
        for config in [
            r#"{"Entrypoint":["/e.sh"],"StopSignal":"SIGTERM","Labels":{"a":"b"}}"#,
            r#"{"Entrypoint":"/e.sh","StopSignal":15,"Labels":{"a":"b"}}"#,
        ] {
            let json = format!(
                r#"{{"Id":"abc","Name":"pg","ImageName":"img","Image":"3c53351e","RestartCount":2,
                "State":{{"Status":"running","Running":true,"Pid":42,"ExitCode":0,
                  "StartedAt":"2026-11-25T17:07:43.174567347Z","FinishedAt":"0001-01-01T00:00:00Z",
                  "Health":{{"Status":"healthy","FailingStreak":0,"Log":[{{"Start":"2026-11-25T17:07:43.2Z","End":"2026-11-25T17:07:43.3Z","ExitCode":0,"Output":"PONG\n"}}]}},
                  "CgroupPath":"/libpod_parent/libpod-abc"}},
                "NetworkSettings":{{"Networks":{{"photos":{{"IPAddress":"10.89.5.2","IPPrefixLen":24,"Gateway":"10.89.5.1","MacAddress":"aa:bb","Aliases":["pg"]}}}}}},
                "Config":{config}}}"#
            );
            let info = serde_json::from_str::<ContainerJson>(&json)
                .unwrap()
                .into_info();
            assert_eq!(info.restart_count, 2);
            assert_eq!(
                (info.image.as_str(), info.image_id.as_str()),
                ("img", "3c53351e")
            );
            assert_eq!(info.state.pid, Some(42));
            assert!(info.state.started_at.is_some());
            assert_eq!(info.state.finished_at, None);
            assert_eq!(info.health_status(), Some(&HealthStatus::Healthy));
            assert_eq!(info.health.as_ref().unwrap().log[0].output, "PONG\n");
            let net = &info.networks["photos"];
            assert_eq!(net.ip, Some("10.89.5.2".parse().unwrap()));
            assert_eq!(net.prefix_len, 24);
            assert_eq!(info.labels["a"], "b");
            assert_eq!(
                info.cgroup_path.as_deref(),
                Some("/libpod_parent/libpod-abc")
            );
        }
    }

    #[test]
    fn a_container_without_health_check_has_no_health() {
        let json = r#"{"Id":"a","Name":"n","State":{"Status":"exited","Health":{"Status":"","FailingStreak":0,"Log":null}}}"#;
        let info = serde_json::from_str::<ContainerJson>(json)
            .unwrap()
            .into_info();
        assert_eq!(info.health, None);
        assert_eq!(info.state.status, ContainerStatus::Exited);
    }

    #[test]
    fn decodes_a_podman5_network() {
        let json = r#"{"name":"n","id":"1688","driver":"bridge","network_interface":"podman1","created":"2026-11-25T17:08:48.903976206Z","subnets":[{"subnet":"10.213.250.0/24","gateway":"10.213.250.1"}],"ipv6_enabled":false,"internal":true,"dns_enabled":true,"network_dns_servers":["10.213.250.53"],"labels":{"a":"b"},"ipam_options":{"driver":"host-local"},"containers":{"c69c":{"name":"v","interfaces":{"eth0":{"subnets":[{"ipnet":"10.213.250.2/24","gateway":"10.213.250.1"}],"mac_address":"d6:9b"}}}}}"#;
        let n = serde_json::from_str::<NetworkJson>(json)
            .unwrap()
            .into_info("test")
            .unwrap();
        assert_eq!(n.subnets[0].subnet.to_string(), "10.213.250.0/24");
        assert_eq!(n.dns_servers, ["10.213.250.53".parse::<IpAddr>().unwrap()]);
        assert!(n.internal && n.dns_enabled);
        assert_eq!(n.containers["c69c"].name, "v");
        assert_eq!(
            n.containers["c69c"].addresses[0].to_string(),
            "10.213.250.2/24"
        );
    }

    #[test]
    fn the_libpod_api_version_is_the_engines() {
        let json = r#"{"Platform":{"Name":"linux/amd64/debian-13"},"Components":[{"Name":"Podman Engine","Version":"5.4.2","Details":{"APIVersion":"5.4.2","MinAPIVersion":"4.0.0"}},{"Name":"Conmon","Version":"2.1.12","Details":{"Package":"conmon"}}],"Version":"5.4.2","ApiVersion":"1.41","MinAPIVersion":"1.24"}"#;
        let v: VersionJson = serde_json::from_str(json).unwrap();
        assert_eq!(v.version, "5.4.2");
        assert_eq!(v.libpod_api_version().as_deref(), Some("5.4.2"));
    }

    #[test]
    fn zero_and_bad_times_are_none() {
        assert_eq!(parse_time("0001-01-01T00:00:00Z"), None);
        assert_eq!(parse_time("yesterday"), None);
        assert!(parse_time("2026-11-25T17:07:43.174567347Z").is_some());
    }
}
