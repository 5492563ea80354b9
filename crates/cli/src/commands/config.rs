//! `config init` and `config show`.

use homelab_immich::Result;
use homelab_immich::config::{self, Loaded};

use crate::args::ConfigCommand;
use crate::output::Reply;

pub(crate) fn run(command: &ConfigCommand, load: impl FnOnce() -> Result<Loaded>) -> Result<Reply> {
    match command {
        ConfigCommand::Init { file, force } => {
            let path = config::init(file.as_deref(), *force)?;
            let human = format!(
                "wrote the default configuration to {}\nedit it, then run `immich-db --config {} plan`",
                path.display(),
                path.display()
            );
            Ok(Reply::new(&serde_json::json!({ "written": path }), human)?.changed(true))
        }
        ConfigCommand::Show => {
            let shown = config::show(&load()?)?;
            let human = format!(
                "# source: {}\n# unit directory: {}\n{}",
                shown.source.describe(),
                shown.resolved.unit_dir.display(),
                shown.toml
            );
            Reply::new(&shown, human)
        }
    }
}
