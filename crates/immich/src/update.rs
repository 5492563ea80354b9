//! `update`: a service moved to the newest image its configured name names,
//! with its health check as the gate and a rollback when the gate is not
//! passed.
//!
//! For each service: the configured image is pulled (unless it is local, or
//! pulling is turned off); when the name now names another image than the one
//! the container runs, the service is restarted (Quadlet creates the container
//! again from the name) and its container must be healthy on the new image
//! within the gate's time. If it is not, the name is given back to the image
//! that ran before and the service is restarted on it.
//!
//! This is what `podman auto-update --rollback` does, but done here: podman's
//! needs the `AutoUpdate=` label on the container and judges a new image by
//! whether systemd's restart job succeeds, which with a health check that never
//! passes takes the unit's whole start timeout (up to 15 minutes here); this
//! gate has its own limit, works the same on every podman from 4.4, and needs
//! no label (so that it is there only where automatic updates are asked for).
//! An image pinned by digest is left alone: a new digest in the configuration
//! is a deploy.

use std::time::{Duration, Instant};

use homelab_podman::{HealthStatus, ImageRef};
use homelab_systemd::{ActiveState, Wait};
use serde::Serialize;

use crate::desired;
use crate::error::{Error, ErrorKind, Result};
use crate::layer::Layer;
use crate::lock;
use crate::progress::Event;

/// How often the container is looked at while the gate is open.
const POLL: Duration = Duration::from_millis(250);

/// The gate's default limit: how long a service on a new image has to become
/// healthy.
pub const DEFAULT_GATE: Duration = Duration::from_secs(120);

/// Which service to update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Service {
    /// PostgreSQL.
    Postgres,
    /// Valkey.
    Valkey,
}

impl Service {
    fn name(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::Valkey => "valkey",
        }
    }
}

/// What `update` does.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UpdateOptions {
    /// The services, in order (by default Valkey, then PostgreSQL).
    pub services: Vec<Service>,
    /// Whether to pull the configured images first (local images never are).
    pub pull: bool,
    /// How long a service on a new image has to become healthy.
    pub gate: Duration,
}

impl Default for UpdateOptions {
    fn default() -> Self {
        Self {
            services: vec![Service::Valkey, Service::Postgres],
            pull: true,
            gate: DEFAULT_GATE,
        }
    }
}

impl UpdateOptions {
    /// Both services, pulling, with the default gate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only this service.
    #[must_use]
    pub fn service(mut self, service: Service) -> Self {
        self.services = vec![service];
        self
    }

    /// Whether to pull first.
    #[must_use]
    pub fn pull(mut self, pull: bool) -> Self {
        self.pull = pull;
        self
    }

    /// The gate's limit.
    #[must_use]
    pub fn gate(mut self, gate: Duration) -> Self {
        self.gate = gate;
        self
    }
}

/// What happened to one service.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Outcome {
    /// It runs the newest image already; nothing was restarted.
    UpToDate,
    /// Its image is pinned by digest: nothing to update.
    Pinned,
    /// It runs the new image, healthy.
    Updated {
        /// How long the new image took to become healthy, in seconds.
        healthy_after_s: f64,
    },
    /// The new image did not become healthy: the service runs the previous
    /// one again, healthy, and the name names it again.
    RolledBack {
        /// Why the new image was refused.
        reason: String,
    },
}

/// One service's update.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ServiceUpdate {
    /// Which service.
    pub service: Service,
    /// Its systemd service.
    pub unit: String,
    /// The configured image.
    pub image: String,
    /// Whether it was pulled.
    pub pulled: bool,
    /// The image ID the container ran before.
    pub previous: String,
    /// The image ID the name named after the pull.
    pub candidate: String,
    /// What happened.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// What `update` did.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct UpdateReport {
    /// Each service.
    pub services: Vec<ServiceUpdate>,
}

impl UpdateReport {
    /// Whether a service was restarted on another image.
    pub fn changed(&self) -> bool {
        self.services
            .iter()
            .any(|s| !matches!(s.outcome, Outcome::UpToDate | Outcome::Pinned))
    }

    /// Whether a new image was refused (and rolled back).
    pub fn rolled_back(&self) -> bool {
        self.services
            .iter()
            .any(|s| matches!(s.outcome, Outcome::RolledBack { .. }))
    }
}

impl Layer {
    /// Moves each service to the newest image of its configured name, with
    /// its health check as the gate, and rolls it back to the image it ran
    /// before when the new one is not healthy in time. A rollback is in the
    /// report; an error means a service could not be updated or rolled back
    /// ([`ErrorKind::Failed`] then says what was done).
    pub async fn update(&self, options: &UpdateOptions) -> Result<UpdateReport> {
        let _lock = lock::acquire(&lock::lock_path(
            &self.deployment,
            self.runtime_dir.as_deref(),
        ))?;
        let mut services = Vec::new();
        for service in &options.services {
            self.tell(Event::Phase(&format!("updating {}", service.name())));
            services.push(update_one(self, *service, options).await?);
        }
        Ok(UpdateReport { services })
    }
}

/// The service's container, unit and configured image.
fn names(ctx: &Layer, service: Service) -> (String, String, String) {
    let c = &ctx.deployment.config;
    let (container, image) = match service {
        Service::Postgres => (&c.postgres.container_name, &c.postgres.image),
        Service::Valkey => (&c.valkey.container_name, &c.valkey.image),
    };
    (
        container.clone(),
        format!("{container}.service"),
        image.clone(),
    )
}

async fn update_one(
    ctx: &Layer,
    service: Service,
    options: &UpdateOptions,
) -> Result<ServiceUpdate> {
    let (container, unit, image) = names(ctx, service);
    let running = ctx
        .runtime
        .inspect_container(&container)
        .await
        .ok()
        .filter(|i| i.state.running && !i.image_id.is_empty())
        .ok_or_else(|| {
            Error::precondition(format!(
                "{container} does not run: there is nothing to update"
            ))
            .help("start it with `immich-db deploy` first")
        })?;
    let previous = running.image_id.clone();
    let mut report = ServiceUpdate {
        service,
        unit: unit.clone(),
        image: image.clone(),
        pulled: false,
        previous: previous.clone(),
        candidate: previous.clone(),
        outcome: Outcome::UpToDate,
    };
    let reference = ImageRef::parse(&image).map_err(|e| Error::bad_input(e.to_string()))?;
    if reference.digest().is_some() {
        report.outcome = Outcome::Pinned;
        return Ok(report);
    }
    if options.pull && !reference.is_local() {
        ctx.tell(Event::Phase(&format!("pulling {image}")));
        ctx.runtime.pull_image(&image).await.map_err(|e| {
            Error::precondition(format!("cannot pull {image}: {e}")).help(
                "check the registry and the network, or update from the local copy with --no-pull",
            )
        })?;
        report.pulled = true;
    }
    let candidate = ctx
        .runtime
        .inspect_image(&image)
        .await
        .map_err(|e| ctx.podman_failure(&format!("looking up {image}"), &e))?
        .id;
    report.candidate.clone_from(&candidate);
    if candidate == previous {
        return Ok(report);
    }

    ctx.tell(Event::Phase(&format!(
        "restarting {unit} on image {}",
        short(&candidate)
    )));
    ctx.systemd
        .restart(std::slice::from_ref(&unit), Wait::Queued)
        .await?;
    match healthy_on(ctx, &container, &unit, &candidate, options.gate).await {
        Ok(after) => {
            ctx.tell(Event::Done(&format!(
                "{unit} runs image {} of {image}, healthy after {:.1} s",
                short(&candidate),
                after.as_secs_f64()
            )));
            report.outcome = Outcome::Updated {
                healthy_after_s: (after.as_secs_f64() * 10.0).round() / 10.0,
            };
            Ok(report)
        }
        Err(reason) => {
            ctx.tell(Event::Warning(&format!(
                "{unit} on image {}: {reason}; rolling back to image {}",
                short(&candidate),
                short(&previous)
            )));
            roll_back(ctx, &container, &unit, &image, &previous).await?;
            report.outcome = Outcome::RolledBack { reason };
            Ok(report)
        }
    }
}

/// Gives the name back to the image that ran before and restarts the service
/// on it, waiting as long as its unit may take to start.
async fn roll_back(
    ctx: &Layer,
    container: &str,
    unit: &str,
    image: &str,
    previous: &str,
) -> Result<()> {
    let done = |what: String| vec![what];
    ctx.runtime.tag_image(previous, image).await.map_err(|e| {
        Error::failed(format!(
            "cannot give {image} back to image {}: {e}",
            short(previous)
        ))
        .help(format!(
            "run `podman tag {previous} {image}` and `systemctl{} restart {unit}`",
            ctx.systemd.scope().flag()
        ))
    })?;
    ctx.systemd
        .restart(&[unit.to_owned()], Wait::Queued)
        .await?;
    let limit = Duration::from_secs(match unit {
        u if u == format!("{}.service", ctx.deployment.config.postgres.container_name) => {
            desired::POSTGRES_START_TIMEOUT_S
        }
        _ => desired::VALKEY_START_TIMEOUT_S,
    });
    healthy_on(ctx, container, unit, previous, limit)
        .await
        .map(|_| ())
        .map_err(|why| {
            Error::new(
                ErrorKind::Failed,
                format!(
                    "rolled {image} back to image {}, but {unit} is not healthy on it either: {why}",
                    short(previous)
                ),
            )
            .help(format!(
                "see `systemctl{} status {unit}` and `podman logs {container}`",
                ctx.systemd.scope().flag()
            ))
            .part_way(done(format!("tagged image {} as {image}", short(previous))))
        })
}

/// Waits until the container runs `image`, healthy, and its unit is active;
/// says why not when `limit` passes first.
async fn healthy_on(
    ctx: &Layer,
    container: &str,
    unit: &str,
    image: &str,
    limit: Duration,
) -> std::result::Result<Duration, String> {
    let started = Instant::now();
    let mut last = format!("{container} was not created on the image");
    loop {
        if let Ok(info) = ctx.runtime.inspect_container(container).await
            && info.image_id == image
        {
            let health = info.health_status().cloned();
            last = match (&health, info.state.running) {
                (_, false) => format!("{container} is {}", info.state.status),
                (Some(HealthStatus::Healthy), true) => match ctx.systemd.unit(unit).await {
                    Ok(state) if state.active == ActiveState::Active => {
                        return Ok(started.elapsed());
                    }
                    Ok(state) => format!("{container} is healthy, {unit} is {}", state.active),
                    Err(e) => e.to_string(),
                },
                (Some(status), true) => format!("its health check says {status}"),
                (None, true) => format!("{container} has no health check"),
            };
        }
        if started.elapsed() >= limit {
            return Err(format!("not healthy within {} s ({last})", limit.as_secs()));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// An image ID as podman shows it.
fn short(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    id.get(..12).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_says_what_changed() {
        let one = |outcome| ServiceUpdate {
            service: Service::Valkey,
            unit: "vk.service".into(),
            image: "localhost/vk:1".into(),
            pulled: false,
            previous: "a".into(),
            candidate: "b".into(),
            outcome,
        };
        let report = UpdateReport {
            services: vec![one(Outcome::UpToDate), one(Outcome::Pinned)],
        };
        assert!(!report.changed() && !report.rolled_back());
        let report = UpdateReport {
            services: vec![
                one(Outcome::UpToDate),
                one(Outcome::RolledBack { reason: "x".into() }),
            ],
        };
        assert!(report.changed() && report.rolled_back());
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["services"][1]["outcome"], "rolled-back");
        assert_eq!(json["services"][1]["reason"], "x");
        assert_eq!(json["services"][1]["service"], "valkey");
    }

    #[test]
    fn ids_are_shown_short() {
        assert_eq!(short("sha256:3c53351ee0b3fec2f0915134"), "3c53351ee0b3");
        assert_eq!(short("abc"), "abc");
    }
}
