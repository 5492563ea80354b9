//! `config init` and `config show`.

use std::io::Write as _;
use std::path::Path;

use serde_json::json;

use crate::config::{self, Loaded};
use crate::error::{Failure, Result};
use crate::output::Outcome;

/// Writes the commented default configuration to `file` (or the default
/// location), refusing to replace an existing file unless `force`.
pub(crate) fn init(file: Option<&Path>, force: bool) -> Result<Outcome> {
    let path = match file {
        Some(path) => path.to_path_buf(),
        None => config::home_config_path().ok_or_else(|| {
            Failure::bad_input("cannot find the default configuration path: $HOME is not set")
                .help("give the file to write: `immich-db config init FILE`")
        })?,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| {
            Failure::bad_input(format!(
                "cannot create the directory {}: {e}",
                parent.display()
            ))
        })?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut out = options.open(&path).map_err(|e| {
        let failure = Failure::bad_input(format!("cannot write {}: {e}", path.display()));
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            failure.help("it is kept as it is; pass --force to replace it, or choose another file")
        } else {
            failure
        }
    })?;
    out.write_all(config::template().as_bytes())
        .and_then(|()| out.sync_all())
        .map_err(|e| Failure::failed(format!("cannot write {}: {e}", path.display())))?;
    Outcome::ok(
        json!({ "written": path }),
        format!(
            "wrote the default configuration to {}\nedit it, then run `immich-db --config {} plan`",
            path.display(),
            path.display()
        ),
    )
}

/// Prints the configuration in effect, after checking it.
pub(crate) fn show(loaded: &Loaded) -> Result<Outcome> {
    let deployment = config::validate(loaded)?;
    let text = toml::to_string_pretty(&loaded.config)
        .map_err(|e| Failure::failed(format!("cannot render the configuration: {e}")))?;
    Outcome::ok(
        json!({
            "source": loaded.origin,
            "config": loaded.config,
            "resolved": {
                "network": deployment.podman_network(),
                "pool": deployment.pool,
                "directories": deployment.dirs,
                "unit_dir": deployment.unit_dir,
                "scope": deployment.scope,
            },
        }),
        format!(
            "# source: {}\n# unit directory: {}\n{text}",
            loaded.origin.describe(),
            deployment.unit_dir.display()
        ),
    )
}
