//! `completions` and `manpage`: shell completion scripts and manual pages,
//! generated from the command definitions.

use std::io::Write as _;
use std::path::Path;

use clap::CommandFactory as _;
use homelab_immich::{Error, Result};

use crate::args::{Cli, CompletionsArgs, ManpageArgs};
use crate::output::Reply;

/// The completion script for `shell`.
pub(crate) fn completion_script(shell: clap_complete::Shell) -> Vec<u8> {
    let mut command = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "immich-db", &mut out);
    out
}

pub(crate) fn completions(args: &CompletionsArgs) -> Result<Reply> {
    let script = completion_script(args.shell);
    std::io::stdout()
        .lock()
        .write_all(&script)
        .map_err(|e| Error::failed(format!("cannot write the script: {e}")))?;
    Ok(Reply::empty())
}

/// Every page: the command's own, then one per subcommand at any depth, named
/// `immich-db-<sub>[-<subsub>].1`.
pub(crate) fn pages() -> Result<Vec<(String, Vec<u8>)>> {
    fn walk(command: &clap::Command, name: &str, pages: &mut Vec<(String, Vec<u8>)>) -> Result<()> {
        let mut out = Vec::new();
        // Once built, a subcommand's display name is `immich-db-<sub>`, which
        // the page takes as its title.
        clap_mangen::Man::new(command.clone())
            .render(&mut out)
            .map_err(|e| Error::failed(format!("cannot render the page of {name}: {e}")))?;
        pages.push((format!("{name}.1"), out));
        for sub in command.get_subcommands() {
            if sub.get_name() == "help" {
                continue;
            }
            walk(sub, &format!("{name}-{}", sub.get_name()), pages)?;
        }
        Ok(())
    }
    let mut command = Cli::command();
    command.build();
    let mut pages = Vec::new();
    walk(&command, "immich-db", &mut pages)?;
    Ok(pages)
}

pub(crate) fn manpage(args: &ManpageArgs) -> Result<Reply> {
    let pages = pages()?;
    let Some(dir) = &args.dir else {
        let (_, main) = &pages[0];
        std::io::stdout()
            .lock()
            .write_all(main)
            .map_err(|e| Error::failed(format!("cannot write the page: {e}")))?;
        return Ok(Reply::empty());
    };
    let mut written = Vec::new();
    for (name, page) in &pages {
        let path = dir.join(name);
        homelab_quadlet::write_atomic(&path, page)
            .map_err(|e| Error::bad_input(format!("cannot write {}: {e}", path.display())))?;
        written.push(path);
    }
    Reply::new(
        &serde_json::json!({ "written": written }),
        format!(
            "wrote {} manual page(s) to {}{}",
            written.len(),
            dir.display(),
            hint(dir)
        ),
    )
}

fn hint(dir: &Path) -> String {
    format!(
        "\nread one with `man -l {}`",
        dir.join("immich-db.1").display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command and subcommand, at any depth, by its path of names.
    fn all_commands() -> Vec<(String, clap::Command)> {
        fn walk(command: &clap::Command, path: &str, out: &mut Vec<(String, clap::Command)>) {
            out.push((path.to_owned(), command.clone()));
            for sub in command.get_subcommands() {
                if sub.get_name() != "help" {
                    walk(sub, &format!("{path} {}", sub.get_name()), out);
                }
            }
        }
        let mut command = Cli::command();
        command.build();
        let mut out = Vec::new();
        walk(&command, "immich-db", &mut out);
        out
    }

    #[test]
    fn the_command_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_help_shows_an_example() {
        let commands = all_commands();
        assert!(commands.len() > 15, "{}", commands.len());
        let mut missing = Vec::new();
        for (path, mut command) in commands {
            let help = command.render_long_help().to_string();
            let example = help
                .split_once("Example")
                .map(|(_, rest)| rest.contains("immich-db "));
            if example != Some(true) {
                missing.push(path);
            }
        }
        assert!(missing.is_empty(), "no example in the help of: {missing:?}");
    }

    #[test]
    fn completions_name_every_subcommand() {
        use clap_complete::Shell;
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let script = String::from_utf8(completion_script(shell)).unwrap();
            for name in [
                "backup",
                "restore",
                "secrets",
                "rotate",
                "fix-nocow",
                "deploy",
            ] {
                assert!(script.contains(name), "{shell:?} lacks {name}");
            }
        }
    }

    #[test]
    fn pages_cover_every_subcommand() {
        let pages = pages().unwrap();
        let names: Vec<&str> = pages.iter().map(|(n, _)| n.as_str()).collect();
        for name in [
            "immich-db.1",
            "immich-db-backup.1",
            "immich-db-secrets-rotate.1",
            "immich-db-storage-fix-nocow.1",
        ] {
            assert!(names.contains(&name), "{names:?}");
        }
        let main = String::from_utf8(pages[0].1.clone()).unwrap();
        assert!(main.starts_with(".ie") || main.contains(".TH"), "{main}");
    }
}
