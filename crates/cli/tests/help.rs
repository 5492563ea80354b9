//! The shell integration, through the binary: `--help` of every command shows an
//! example (the command tree walked through the help output itself), the
//! completion scripts parse in their shells, and the manual pages render.

#![allow(clippy::unwrap_used)] // test helpers fail the test by panicking

use std::path::Path;
use std::process::{Command, Output};

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_immich-db")
}

fn run(args: &[&str]) -> Output {
    let out = Command::new(binary())
        .args(args)
        .env_remove("IMMICH_DB_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "immich-db {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The subcommands a help text lists under `Commands:`.
fn subcommands(help: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut inside = false;
    for line in help.lines() {
        if line.trim_end() == "Commands:" {
            inside = true;
            continue;
        }
        if inside {
            if line.trim().is_empty() || !line.starts_with("  ") {
                break;
            }
            // Names start at two spaces; wrapped descriptions are indented more.
            if line.starts_with("  ") && !line.starts_with("   ") {
                let name = line.split_whitespace().next().unwrap().to_owned();
                if name != "help" {
                    names.push(name);
                }
            }
        }
    }
    names
}

/// Walks the command tree from the top, through `--help` of each command.
fn walk(path: &mut Vec<String>, seen: &mut Vec<(String, String)>) {
    let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
    args.push("--help");
    let help = String::from_utf8(run(&args).stdout).unwrap();
    seen.push((path.join(" "), help.clone()));
    for name in subcommands(&help) {
        path.push(name);
        walk(path, seen);
        path.pop();
    }
}

#[test]
fn every_command_shows_an_example_in_its_help() {
    let mut seen = Vec::new();
    walk(&mut Vec::new(), &mut seen);
    let paths: Vec<&str> = seen.iter().map(|(p, _)| p.as_str()).collect();
    for expected in [
        "",
        "backup",
        "restore",
        "secrets rotate",
        "secrets show",
        "storage fix-nocow",
        "completions",
        "manpage",
        "config init",
        "quadlet lint",
    ] {
        assert!(
            paths.contains(&expected),
            "{expected:?} not reached: {paths:?}"
        );
    }
    for (path, help) in &seen {
        let example = help
            .split_once("Example")
            .is_some_and(|(_, rest)| rest.contains("immich-db "));
        assert!(
            example,
            "`immich-db {path} --help` shows no example:\n{help}"
        );
    }
}

#[test]
fn the_way_over_to_kubernetes_is_in_the_help() {
    let render_help = String::from_utf8(run(&["render", "--help"]).stdout).unwrap();
    for flag in [
        "--kubernetes",
        "--include-secrets",
        "immich-db render --kubernetes --output",
    ] {
        assert!(
            render_help.contains(flag),
            "`render --help` lacks {flag}:\n{render_help}"
        );
    }
    let restore = String::from_utf8(run(&["restore", "--help"]).stdout).unwrap();
    for flag in [
        "--target <URL>",
        "--password-stdin",
        "--password-file <FILE>",
        "postgresql://USER@HOST:PORT/DATABASE",
        "immich-db restore --target postgresql://immich@127.0.0.1:15432/immich --password-stdin",
    ] {
        assert!(
            restore.contains(flag),
            "`restore --help` lacks {flag}:\n{restore}"
        );
    }
    // The manual page of restore says it too.
    let dir = tempfile::tempdir().unwrap();
    run(&["manpage", "--dir", dir.path().to_str().unwrap()]);
    let page = render(&dir.path().join("immich-db-restore.1"));
    assert!(page.contains("--password-stdin"), "{page}");
}

/// Runs `shell -n` (parse only) on a script, when the shell is installed.
fn parses_in(shell: &str, flag: &str, script: &[u8]) -> Option<Output> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("immich-db.completion");
    std::fs::write(&file, script).unwrap();
    match Command::new(shell).arg(flag).arg(&file).output() {
        Ok(out) => Some(out),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("cannot run {shell}: {e}"),
    }
}

#[test]
fn completion_scripts_parse_in_their_shells() {
    let bash = run(&["completions", "bash"]).stdout;
    let out = parses_in("bash", "-n", &bash).expect("bash is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Loaded into bash, it completes the subcommands.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("immich-db.bash");
    std::fs::write(&file, &bash).unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(
            r#"source "$1"
COMP_WORDS=(immich-db sec); COMP_CWORD=1; COMP_LINE="immich-db sec"; COMP_POINT=${#COMP_LINE}
function=$(complete -p immich-db | sed 's/.*-F \([^ ]*\).*/\1/')
"$function" immich-db sec immich-db
printf '%s\n' "${COMPREPLY[@]}""#,
        )
        .arg("bash")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "secrets");

    for (shell, flag) in [("zsh", "-n"), ("fish", "--no-execute")] {
        let script = run(&["completions", shell]).stdout;
        assert!(
            String::from_utf8_lossy(&script).contains("fix-nocow"),
            "{shell}"
        );
        match parses_in(shell, flag, &script) {
            Some(out) => assert!(
                out.status.success(),
                "{shell}: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
            // The test host installs both shells: in CI the scripts are always parsed.
            None if immich_db_testhost::host_required() => {
                panic!("{shell} is not installed: run scripts/provision --yes")
            }
            None => eprintln!("SKIPPED parsing the {shell} script: {shell} is not installed"),
        }
    }
}

fn render(page: &Path) -> String {
    let out = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww"])
        .arg(page)
        .output()
        .expect("groff is installed (groff-base, in scripts/provision)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "groff warns about {}: {}",
        page.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_manual_pages_render() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("stdout.1");
    std::fs::write(&main, run(&["manpage"]).stdout).unwrap();
    let text = render(&main);
    assert!(text.contains("immich-db"), "{text}");
    assert!(text.contains("backup"), "{text}");

    run(&["manpage", "--dir", dir.path().to_str().unwrap()]);
    let mut pages: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("immich-db"))
        .collect();
    pages.sort();
    assert!(pages.len() > 15, "{pages:?}");
    for name in [
        "immich-db.1",
        "immich-db-restore.1",
        "immich-db-secrets-rotate.1",
    ] {
        assert!(pages.contains(&name.to_owned()), "{pages:?}");
    }
    for page in &pages {
        let text = render(&dir.path().join(page));
        assert!(text.contains("NAME") || text.contains("N\u{8}NA"), "{page}");
    }
    let rotate = render(&dir.path().join("immich-db-secrets-rotate.1"));
    assert!(
        rotate.contains("immich-db secrets rotate postgres-password"),
        "{rotate}"
    );
    // man itself reads it, where man is installed.
    if let Ok(out) = Command::new("man")
        .arg("-l")
        .arg(dir.path().join("immich-db-backup.1"))
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .output()
    {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("--schedule"));
    }
}
