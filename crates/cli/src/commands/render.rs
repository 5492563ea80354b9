//! `render`: the unit files for a podman release, or the Kubernetes
//! manifests, into a directory.

use std::fmt::Write as _;
use std::path::Path;

use homelab_immich::kubernetes::{self, KubernetesOptions};
use homelab_immich::render::{RenderOptions, Written, render};
use homelab_immich::{Access, Deployment, Result};

use crate::args::RenderArgs;
use crate::output::Reply;

pub(crate) fn run(deployment: &Deployment, args: &RenderArgs) -> Result<Reply> {
    let mut options = RenderOptions::new(&args.output);
    if let Some(podman) = &args.podman {
        options = options.podman(podman);
    }
    if args.rootless || args.rootful {
        options = options.rootless(args.rootless);
    }
    let rendered = render(deployment, &options)?;
    let mut human = files_written(
        rendered
            .files
            .iter()
            .map(|f| (f.path.as_path(), f.service.as_str(), f.written)),
    );
    let _ = write!(
        human,
        "render: the units for {} podman {}; copy them to {} and run `systemctl{} daemon-reload`",
        if rendered.rootless {
            "rootless"
        } else {
            "rootful"
        },
        rendered.podman,
        rendered.unit_dir.display(),
        rendered.scope.flag()
    );
    let changed = rendered
        .files
        .iter()
        .any(|f| f.written != Written::Unchanged);
    Ok(Reply::new(&rendered, human)?.changed(changed))
}

/// One line per unit file (its path, service and what was done to it): what
/// was done, where, and the service.
pub(crate) fn files_written<'a>(
    files: impl IntoIterator<Item = (&'a Path, &'a str, Written)>,
) -> String {
    let mut lines = String::new();
    for (path, service, written) in files {
        let what = match written {
            Written::Created => "wrote",
            Written::Updated => "updated",
            _ => "unchanged",
        };
        let _ = writeln!(lines, "{what:<9} {} ({service})", path.display());
    }
    lines
}

/// `render --kubernetes`: the manifests for a Kubernetes cluster.
pub(crate) async fn kubernetes(
    deployment: &Deployment,
    args: &RenderArgs,
    access: &Access,
) -> Result<Reply> {
    let options =
        KubernetesOptions::new(&args.output).include_secrets(args.kubernetes.include_secrets);
    let rendered = kubernetes::render(deployment, &options, access).await?;
    let mut human = String::new();
    for file in &rendered.files {
        let secrets = if file.holds_secrets {
            ", holds the secrets' values"
        } else {
            ""
        };
        let _ = writeln!(
            human,
            "wrote {} (mode {}{secrets})",
            file.path.display(),
            file.mode
        );
    }
    for path in &rendered.left_in_place {
        let _ = writeln!(human, "left  {} from an earlier render", path.display());
    }
    for note in &rendered.notes {
        let _ = writeln!(human, "note: {note}");
    }
    let secrets = if rendered.secrets_included {
        "the Secrets' values are included (mode 0600)"
    } else {
        "no secret value is written: the README says how to create the Secrets"
    };
    let _ = write!(
        human,
        "render: the Kubernetes manifests for namespace {} (CloudNativePG Cluster {}, Valkey {}) in {}; {secrets}. Apply them with `kubectl apply -f {}`; the README there says how to move the data over",
        rendered.namespace,
        rendered.cluster,
        rendered.valkey,
        rendered.directory.display(),
        rendered.directory.display()
    );
    Ok(Reply::new(&rendered, human)?.changed(true))
}
