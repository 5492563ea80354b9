//! `lint` against the real generators of five podman releases: for every file of a
//! corpus of small directories (`tests/rules/*.cases`), and for every key of every
//! kind of file, lint reports a refusal (an error whose code is a refusal) exactly
//! when the generator writes no service for the file.
//!
//! The generators are podman 4.4.4, 4.9.3, 5.0.3 and 5.8.2 from the shared folder
//! (`$IMMICH_DB_SHARED/podman-quadlet`, else `<workspace>/../shared/podman-quadlet`)
//! and the installed one (`/usr/libexec/podman/quadlet`). Without the shared folder
//! the tests say SKIPPED and pass.
//!
//! The corpus format: `=== case-name` starts a case (a directory), `--- file.kind`
//! starts a file of it (`--- file.kind crlf` writes its lines ending with CR LF);
//! other lines are the file's text. Lines before a case's first file are comments.

// Helpers fail the test the way the tests themselves do: by panicking.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use homelab_quadlet::{LintOptions, PodmanVersion, Scope, UnitKind, UnitSet, version};

const INSTALLED: &str = "/usr/libexec/podman/quadlet";
const SHARED_RELEASES: [&str; 4] = ["4.4.4", "4.9.3", "5.0.3", "5.8.2"];

/// A generator binary and the release it belongs to.
struct Generator {
    path: PathBuf,
    version: PodmanVersion,
}

fn shared_dir() -> PathBuf {
    std::env::var_os("IMMICH_DB_SHARED").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
        PathBuf::from,
    )
}

/// The generators to compare with, or `None` (after saying why) when the shared
/// folder is missing.
fn generators(test: &str) -> Option<Vec<Generator>> {
    let dir = shared_dir().join("podman-quadlet");
    if !dir.is_dir() {
        eprintln!(
            "SKIPPED {test}: the generators' folder {} is missing (set IMMICH_DB_SHARED to the shared folder)",
            dir.display()
        );
        return None;
    }
    let mut out: Vec<Generator> = SHARED_RELEASES
        .iter()
        .map(|release| {
            let path = dir.join(format!("quadlet-{release}"));
            assert!(path.is_file(), "{} is missing", path.display());
            Generator {
                path,
                version: release.parse().unwrap(),
            }
        })
        .collect();
    if Path::new(INSTALLED).is_file() {
        let output = Command::new(INSTALLED).arg("-version").output().unwrap();
        let said = String::from_utf8_lossy(&output.stdout);
        let version = said.trim().parse().unwrap_or_else(|e| {
            panic!("{INSTALLED} -version said {said:?}: {e}");
        });
        out.push(Generator {
            path: INSTALLED.into(),
            version,
        });
    } else {
        eprintln!("{INSTALLED} is missing: comparing with the shared generators only");
    }
    Some(out)
}

/// What a generator made of a directory.
#[derive(Debug, Default)]
struct Outcome {
    /// The files it wrote a service for.
    converted: BTreeSet<String>,
    /// Whether it crashed.
    crashed: bool,
    stderr: String,
}

impl Outcome {
    /// Whether the file got no service.
    fn refuses(&self, file_name: &str) -> bool {
        !self.converted.contains(file_name)
    }
}

/// The Quadlet file a generated service comes from: its `SourcePath=`, which every
/// kind has from 5.3 (and containers, kubes, images and pods before); else the
/// name of a network's or volume's service, `NAME-network.service` for
/// `NAME.network`.
fn source_of(service: &str, body: &[&str]) -> String {
    if let Some(path) = body.iter().find_map(|l| l.strip_prefix("SourcePath=")) {
        return path.rsplit('/').next().unwrap().to_owned();
    }
    let stem = service.strip_suffix(".service").unwrap();
    for kind in ["network", "volume"] {
        if let Some(base) = stem.strip_suffix(&format!("-{kind}")) {
            return format!("{base}.{kind}");
        }
    }
    panic!("cannot tell the file of {service}:\n{}", body.join("\n"));
}

/// How long a generator may take on a small directory before it counts as hung
/// (some releases never finish some files).
const HANG: Duration = Duration::from_secs(1);

/// The output of `command`, killed after `limit`; and whether it had to be.
fn output_within(mut command: Command, limit: Duration) -> (std::process::Output, bool) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut hung = false;
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            hung = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    (child.wait_with_output().unwrap(), hung)
}

fn run(generator: &Generator, dir: &Path, scope: Scope) -> Outcome {
    let mut command = Command::new(&generator.path);
    command.env("QUADLET_UNIT_DIRS", dir).arg("-dryrun");
    if scope == Scope::User {
        command.arg("-user");
    }
    let (output, hung) = output_within(command, HANG);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut outcome = Outcome {
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        ..Outcome::default()
    };
    outcome.crashed = hung || outcome.stderr.contains("panic:");
    let mut blocks: Vec<(&str, Vec<&str>)> = Vec::new();
    for line in stdout.lines() {
        match line.strip_prefix("---").and_then(|l| l.strip_suffix("---")) {
            Some(name) if name.ends_with(".service") => blocks.push((name, Vec::new())),
            _ => {
                if let Some((_, body)) = blocks.last_mut() {
                    body.push(line);
                }
            }
        }
    }
    for (service, body) in &blocks {
        let file = source_of(service, body);
        assert!(
            dir.join(&file).is_file(),
            "{}: {service} is not from a file of {}",
            generator.path.display(),
            dir.display()
        );
        outcome.converted.insert(file);
    }
    outcome
}

/// The files of `dir` that lint, for `target` and `scope`, says the generator
/// refuses, with the findings of each file.
fn lint_refusals(dir: &Path, target: PodmanVersion, scope: Scope) -> (BTreeSet<String>, String) {
    let set = UnitSet::load([dir]).unwrap();
    let findings = LintOptions { target, scope }.run(&set);
    let mut refused = BTreeSet::new();
    let mut text = String::new();
    for finding in &findings {
        let name = finding
            .file
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if finding.code.is_refusal() {
            refused.insert(name);
        }
        let _ = writeln!(text, "    {finding}");
    }
    (refused, text)
}

/// One directory of the corpus.
struct Case {
    name: String,
    files: Vec<(String, String)>,
}

fn corpus() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rules");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cases"))
        .collect();
    paths.sort();
    let mut cases: Vec<Case> = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).unwrap();
        // The file being written: its lines, and whether they end with CR LF.
        let mut file: Option<(Vec<&str>, bool)> = None;
        let flush = |cases: &mut Vec<Case>, file: &mut Option<(Vec<&str>, bool)>| {
            if let Some((lines, crlf)) = file.take() {
                let ending = if crlf { "\r\n" } else { "\n" };
                let mut content = String::new();
                for line in lines {
                    content.push_str(line);
                    content.push_str(ending);
                }
                cases.last_mut().unwrap().files.last_mut().unwrap().1 = content;
            }
        };
        for line in text.lines() {
            if let Some(name) = line.strip_prefix("=== ") {
                flush(&mut cases, &mut file);
                assert!(
                    !cases.iter().any(|c| c.name == name),
                    "{}: case {name} twice",
                    path.display()
                );
                cases.push(Case {
                    name: name.trim().to_owned(),
                    files: Vec::new(),
                });
            } else if let Some(header) = line.strip_prefix("--- ") {
                flush(&mut cases, &mut file);
                let mut words = header.split_whitespace();
                let name = words.next().unwrap().to_owned();
                let crlf = words.next() == Some("crlf");
                let case = cases.last_mut().expect("a file before the first case");
                case.files.push((name, String::new()));
                file = Some((Vec::new(), crlf));
            } else if let Some((lines, _)) = &mut file {
                lines.push(line);
            }
        }
        flush(&mut cases, &mut file);
    }
    cases
}

fn write_case(root: &Path, case: &Case) -> PathBuf {
    let dir = root.join(&case.name);
    std::fs::create_dir(&dir).unwrap();
    for (name, content) in &case.files {
        std::fs::write(dir.join(name), content).unwrap();
    }
    dir
}

/// Runs `work` on every item, on as many threads as there are cores, and
/// collects what each returns.
fn parallel<T: Sync, R: Send>(items: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    let chunk = items.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(|| part.iter().map(&work).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

/// Each file's verdicts, by generator and scope.
struct Verdicts {
    /// (generator index, scope, file name, generator refuses, lint refuses).
    rows: Vec<(usize, Scope, String, bool, bool)>,
    /// The disagreements, described.
    mismatches: Vec<String>,
    /// Disagreements of lint for podman 4.4 with the generator of 5.8.
    control: usize,
}

fn compare(generators: &[Generator], dir: &Path, label: &str, scopes: &[Scope]) -> Verdicts {
    let mut verdicts = Verdicts {
        rows: Vec::new(),
        mismatches: Vec::new(),
        control: 0,
    };
    let files: Vec<String> = {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| UnitKind::of_file_name(n).is_some())
            .collect();
        names.sort();
        names
    };
    for (index, generator) in generators.iter().enumerate() {
        for &scope in scopes {
            let outcome = run(generator, dir, scope);
            if outcome.crashed {
                assert_eq!(files.len(), 1, "{label}: a crash case has one file only");
            }
            let target = generator.version;
            let (lint_refused, findings) = lint_refusals(dir, target, scope);
            // Control: lint for the wrong release disagrees with the newest one.
            if target >= PodmanVersion::V5_8 && scope == Scope::User {
                let (wrong, _) = lint_refusals(dir, PodmanVersion::V4_4, scope);
                verdicts.control += files
                    .iter()
                    .filter(|f| outcome.refuses(f) != wrong.contains(*f))
                    .count();
            }
            for file in &files {
                let theirs = outcome.refuses(file);
                let ours = lint_refused.contains(file);
                verdicts
                    .rows
                    .push((index, scope, file.clone(), theirs, ours));
                if theirs != ours {
                    let said: Vec<&str> = outcome
                        .stderr
                        .lines()
                        .filter(|l| !l.contains("Loading source unit file"))
                        .collect();
                    verdicts.mismatches.push(format!(
                        "{label}/{file}: podman {} ({scope:?}) {} it, lint (for {target}) says it {}\n  generator: {}\n  lint:\n{findings}",
                        generator.version,
                        if theirs { "refuses" } else { "converts" },
                        if ours { "is refused" } else { "converts" },
                        said.join("\n    "),
                    ));
                }
            }
        }
    }
    verdicts
}

#[test]
fn lint_agrees_with_each_generator_on_every_corpus_file() {
    let Some(generators) = generators("lint_agrees_with_each_generator_on_every_corpus_file")
    else {
        return;
    };
    let cases = corpus();
    let root = tempfile::tempdir().unwrap();
    let dirs: Vec<(String, PathBuf)> = cases
        .iter()
        .map(|c| (c.name.clone(), write_case(root.path(), c)))
        .collect();
    let results = parallel(&dirs, |(name, dir)| {
        compare(&generators, dir, name, &[Scope::User, Scope::System])
    });
    let mut mismatches = Vec::new();
    let mut files = BTreeSet::new();
    let mut refused = vec![0usize; generators.len()];
    let mut converted = vec![0usize; generators.len()];
    let mut agreed = vec![0usize; generators.len()];
    for ((name, _), verdicts) in dirs.iter().zip(&results) {
        mismatches.extend(verdicts.mismatches.iter().cloned());
        for (index, scope, file, theirs, ours) in &verdicts.rows {
            files.insert(format!("{name}/{file}"));
            if *scope == Scope::User {
                if *theirs {
                    refused[*index] += 1;
                } else {
                    converted[*index] += 1;
                }
                if theirs == ours {
                    agreed[*index] += 1;
                }
            }
        }
    }
    for (index, generator) in generators.iter().enumerate() {
        eprintln!(
            "podman {}: {} files in {} cases, the generator refuses {} and converts {}; lint agrees on {}",
            generator.version,
            files.len(),
            cases.len(),
            refused[index],
            converted[index],
            agreed[index]
        );
    }
    assert!(
        mismatches.is_empty(),
        "{} disagreements:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    // Positive controls: the corpus has both kinds of file for every release, and
    // the comparison sees a lint for the wrong release.
    assert!(cases.len() >= 150, "{} cases", cases.len());
    let control: usize = results.iter().map(|v| v.control).sum();
    assert!(
        control >= 30,
        "lint for 4.4 disagrees with the newest generator on {control} files only"
    );
    for (index, generator) in generators.iter().enumerate() {
        assert!(
            refused[index] >= 50 && converted[index] >= 50,
            "podman {}: {} refused, {} converted",
            generator.version,
            refused[index],
            converted[index]
        );
    }
}

/// A value for `key` that keeps the file readable by every release (a `Mount=`
/// without `=` crashes 4.5 to 4.7).
fn sweep_value(key: &str) -> &'static str {
    match key {
        "Mount" => "type=tmpfs,destination=/sweep",
        _ => "1",
    }
}

#[test]
fn lint_agrees_with_each_generator_on_every_key() {
    let Some(generators) = generators("lint_agrees_with_each_generator_on_every_key") else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let mut dirs = Vec::new();
    for kind in UnitKind::ALL {
        let dir = root.path().join(kind.extension());
        std::fs::create_dir(&dir).unwrap();
        let section = kind.section();
        // What each kind needs before the generator looks further.
        let base = match kind {
            UnitKind::Container | UnitKind::Image => "Image=docker.io/library/alpine:3.20\n",
            UnitKind::Build => "ImageTag=localhost/sweep:1\nFile=/srv/Containerfile\n",
            UnitKind::Kube => "Yaml=/srv/sweep.yaml\n",
            UnitKind::Artifact => "Artifact=quay.io/sweep/artifact:1\n",
            _ => "",
        };
        let mut keys: Vec<&str> = version::keys(kind).iter().map(|i| i.key).collect();
        keys.push("Bogus");
        for key in keys {
            std::fs::write(
                dir.join(format!("k-{key}.{}", kind.extension())),
                format!("[{section}]\n{base}{key}={}\n", sweep_value(key)),
            )
            .unwrap();
        }
        // The [Quadlet] section, known from 5.3.
        for info in version::quadlet_section_keys() {
            std::fs::write(
                dir.join(format!("q-{}.{}", info.key, kind.extension())),
                format!("[{section}]\n{base}\n[Quadlet]\n{}=false\n", info.key),
            )
            .unwrap();
        }
        std::fs::write(
            dir.join(format!("q-Bogus.{}", kind.extension())),
            format!("[{section}]\n{base}\n[Quadlet]\nBogus=false\n"),
        )
        .unwrap();
        dirs.push((kind.extension().to_owned(), dir));
    }
    let results = parallel(&dirs, |(name, dir)| {
        compare(&generators, dir, name, &[Scope::User])
    });
    let checked: usize = results.iter().map(|v| v.rows.len()).sum();
    let mismatches: Vec<&String> = results.iter().flat_map(|v| &v.mismatches).collect();
    for (index, generator) in generators.iter().enumerate() {
        let rows: Vec<_> = results
            .iter()
            .flat_map(|v| &v.rows)
            .filter(|r| r.0 == index)
            .collect();
        let refused = rows.iter().filter(|r| r.3).count();
        eprintln!(
            "podman {}: {} key files, the generator refuses {refused}, converts {}",
            generator.version,
            rows.len(),
            rows.len() - refused
        );
        // Positive control: each release refuses some keys and accepts others.
        assert!(
            refused >= 8 && rows.len() - refused >= 50,
            "{refused} of {}",
            rows.len()
        );
    }
    assert!(checked > 1000, "{checked}");
    assert!(
        mismatches.is_empty(),
        "{} disagreements:\n{}",
        mismatches.len(),
        mismatches
            .iter()
            .map(|m| m.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}
