//! `render`: the unit files for a podman release, into a directory.

use std::fmt::Write as _;

use homelab_immich::render::{RenderOptions, Written, render};
use homelab_immich::{Deployment, Result};

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
    let mut human = String::new();
    for file in &rendered.files {
        let what = match file.written {
            Written::Created => "wrote",
            Written::Updated => "updated",
            _ => "unchanged",
        };
        let _ = writeln!(
            human,
            "{what:<9} {} ({})",
            file.path.display(),
            file.service
        );
    }
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
