//! `plan` and `deploy`: every precondition first, then what would change (unit
//! diffs, directories, secrets, the network, services), and for a deploy: the
//! network unit, storage, secrets, container units, `daemon-reload`, start or
//! restart what changed, wait for health, verify.

mod apply;
mod wait;

use std::time::{Duration, Instant};

use homelab_podman::HealthStatus;
use serde::Serialize;
use tracing::Instrument as _;

use crate::error::{Error, ErrorKind, Result};
use crate::layer::Layer;
use crate::lock;
use crate::plan::{self, Plan};
use crate::preconditions::{self, Finding, HostReport};
use crate::progress::Event;
use crate::verify::{self, Verification};

/// How old the units' states asked beside the host checks may be when the plan
/// uses them.
const FRESH_STATES: Duration = Duration::from_secs(1);

/// What `plan` and `deploy` accept of the host.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct DeployOptions {
    /// Proceed when the pool is not on BTRFS (NOCOW then has no effect).
    pub allow_non_btrfs: bool,
}

impl DeployOptions {
    /// A BTRFS pool is required.
    pub fn new() -> Self {
        Self::default()
    }

    /// Proceed on a pool that is not BTRFS.
    #[must_use]
    pub fn allow_non_btrfs(mut self, allow: bool) -> Self {
        self.allow_non_btrfs = allow;
        self
    }
}

/// What `deploy` would do, and what the host checks found.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct PlanReport {
    /// Whether deploy would change anything.
    pub changes: bool,
    /// The host checks.
    pub preconditions: HostReport,
    /// The plan.
    pub plan: Plan,
}

/// What a deploy did.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct DeployReport {
    /// Whether anything was changed.
    pub changed: bool,
    /// What was done, in order.
    pub done: Vec<String>,
    /// The warnings of the host checks.
    pub warnings: Vec<Finding>,
    /// The plan carried out (absent when nothing changed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
    /// The checks after the deploy (absent when nothing changed: the
    /// containers were found healthy).
    #[serde(rename = "verify", skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
}

impl DeployReport {
    /// The checks after the deploy, when it changed anything.
    pub fn verification(&self) -> Option<&Verification> {
        self.verification.as_ref()
    }
}

impl Layer {
    /// Checks the host: podman and its Quadlet generator, the systemd manager,
    /// the pool, the images (pulling none), the subnet, look-alike secrets.
    /// Changes nothing.
    pub async fn check_host(&self, options: &DeployOptions) -> HostReport {
        preconditions::check(self, options.allow_non_btrfs, false).await
    }

    /// What `deploy` would do, step by step, changing nothing. A missing host
    /// precondition is an error ([`ErrorKind::Precondition`]).
    pub async fn plan(&self, options: &DeployOptions) -> Result<PlanReport> {
        let preconditions = self.check_host(options).await.into_result()?;
        let plan = plan::plan_given(
            self,
            preconditions.nocow_possible,
            preconditions.podman_version,
            preconditions.postgres_layout.as_ref(),
            plan::unit_states(self).await,
        )
        .await?;
        Ok(PlanReport {
            changes: !plan.is_empty(),
            preconditions,
            plan,
        })
    }

    /// Checks the host, then creates or updates the network, storage, secrets
    /// and units, starts or restarts what changed, waits for health and
    /// verifies. Running it again changes nothing and restarts nothing.
    ///
    /// A deploy that stops part-way is an [`ErrorKind::Failed`] error that
    /// lists what was done; running it again resumes. A deploy that did every
    /// step but does not verify is an [`ErrorKind::CheckFailed`] error.
    pub async fn deploy(&self, options: &DeployOptions) -> Result<DeployReport> {
        let d = &self.deployment;
        let _lock = lock::acquire(&lock::lock_path(d, self.runtime_dir.as_deref()))?;
        self.deploy_held(options).await
    }

    /// [`Layer::deploy`], for an operation that holds the deployment's lock
    /// already (an upgrade, an import).
    pub(crate) async fn deploy_held(&self, options: &DeployOptions) -> Result<DeployReport> {
        self.tell(Event::Phase("checking the host"));
        let (report, plan) = self
            .check_and_plan(options)
            .instrument(tracing::debug_span!("preconditions and plan"))
            .await?;
        let warnings: Vec<Finding> = report.warnings().cloned().collect();
        for w in &warnings {
            let fix = w.fix.as_deref().map(|f| format!(" (fix: {f})"));
            self.tell(Event::Warning(&format!(
                "{}{}",
                w.detail,
                fix.unwrap_or_default()
            )));
        }
        if plan.is_empty() {
            // Nothing to change is not the same as working: a service whose
            // container is unhealthy fails the deploy, as the full verify would.
            let unhealthy = unhealthy_containers(self).await;
            if !unhealthy.is_empty() {
                return Err(Error::new(
                    ErrorKind::CheckFailed,
                    format!(
                        "the deployment is as configured, but not healthy: {}",
                        unhealthy.join("; ")
                    ),
                )
                .help(
                    "nothing was changed; run `immich-db verify` and `immich-db status` for details",
                ));
            }
            return Ok(DeployReport {
                changed: false,
                done: Vec::new(),
                warnings,
                plan: None,
                verification: None,
            });
        }
        let mut done = apply::Done::new(self);
        let verification = match apply::apply(self, &plan, &mut done).await {
            Ok(verification) => verification,
            Err(failure) => return Err(failure.part_way(done.into_lines())),
        };
        let done = done.into_lines();
        if !verification.ok {
            let list: Vec<String> = verification
                .checks
                .iter()
                .filter(|c| !c.ok && c.severity == verify::Severity::Error)
                .map(|c| format!("{}: {}", c.name, c.detail))
                .collect();
            // Every step was done: running deploy again would not help, so
            // this is a failed check, not a deploy stopped part-way.
            let mut failure = Error::new(
                ErrorKind::CheckFailed,
                format!(
                    "deployed, but the deployment does not verify: {}",
                    list.join("; ")
                ),
            )
            .help(
                "run `immich-db verify` and `immich-db status` for details; \
                 copy-on-write files in a database directory are repaired by \
                 `immich-db storage fix-nocow`",
            );
            failure.done = done;
            return Err(failure);
        }
        Ok(DeployReport {
            changed: true,
            done,
            warnings,
            plan: Some(plan),
            verification: Some(verification),
        })
    }

    /// The host checks, pulling missing images, and the plan. While the host
    /// is checked, systemd is asked what the plan needs of it; if the checks
    /// took long (an image was pulled), it is asked again.
    async fn check_and_plan(&self, options: &DeployOptions) -> Result<(HostReport, Plan)> {
        let asked = Instant::now();
        let (report, states) = tokio::join!(
            preconditions::check(self, options.allow_non_btrfs, true),
            plan::unit_states(self)
        );
        let report = report.into_result()?;
        let states = if asked.elapsed() > FRESH_STATES {
            plan::unit_states(self).await
        } else {
            states
        };
        let plan = plan::plan_given(
            self,
            report.nocow_possible,
            report.podman_version,
            report.postgres_layout.as_ref(),
            states,
        )
        .await?;
        Ok((report, plan))
    }
}

/// The containers whose last health check did not pass, each with its state.
async fn unhealthy_containers(ctx: &Layer) -> Vec<String> {
    let config = &ctx.deployment.config;
    let names = [
        &config.postgres.container_name,
        &config.valkey.container_name,
    ];
    let (postgres, valkey) = tokio::join!(
        ctx.runtime.inspect_container(names[0]),
        ctx.runtime.inspect_container(names[1])
    );
    names
        .iter()
        .zip([postgres, valkey])
        .filter_map(|(name, answer)| match answer {
            Ok(info) => match info.health_status() {
                Some(HealthStatus::Healthy) => None,
                Some(status) => Some(format!("{name} is {status}")),
                None => Some(format!("{name} has no health check")),
            },
            Err(e) => Some(format!("{name}: {e}")),
        })
        .collect()
}

#[cfg(test)]
mod tests;
