//! Parse, render, format and lint throughput, in units per second.
//!
//! `cargo bench -p homelab-quadlet --bench throughput` prints one line per
//! operation. The units are the conformance corpus of the tests (varied files with
//! comments, continuations, quoting and repeated keys) and typed units like the
//! ones immich-db writes.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use homelab_quadlet::{
    AnyUnit, Container, ContainerUnit, InstallSection, KeyValue, PodmanVersion, Secret, UnitFile,
    UnitSet, VolumeMount, format, lint,
};

/// Runs `f` (which handles `units` units per call) for about a second; returns
/// units per second.
fn measure(units: usize, mut f: impl FnMut()) -> f64 {
    let units = f64::from(u32::try_from(units).expect("a few units"));
    // Warm up.
    for _ in 0..10 {
        f();
    }
    let budget = Duration::from_secs(1);
    let start = Instant::now();
    let mut calls = 0u32;
    while start.elapsed() < budget {
        f();
        calls += 1;
    }
    let seconds = start.elapsed().as_secs_f64();
    f64::from(calls) * units / seconds
}

fn report(what: &str, per_second: f64) {
    println!("{what:<44} {per_second:>12.0} units/s");
}

fn corpus() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("the corpus directory")
        .filter_map(|e| {
            let path = e.ok()?.path();
            let name = path.file_name()?.to_str()?.to_owned();
            homelab_quadlet::UnitKind::of_file_name(&name)?;
            Some((name, std::fs::read_to_string(&path).ok()?))
        })
        .collect();
    files.sort();
    files
}

fn typed_units() -> Vec<ContainerUnit> {
    (0..20)
        .map(|i| ContainerUnit {
            container: Container {
                image: Some(format!("docker.io/library/postgres:{i}")),
                container_name: Some(format!("pg-{i}")),
                network: vec!["photos.network".into()],
                environment: vec![
                    KeyValue::new("POSTGRES_USER", "immich"),
                    KeyValue::new("POSTGRES_INITDB_ARGS", "--data-checksums --encoding=UTF8"),
                ],
                secret: vec![Secret::env("postgres-password", "POSTGRES_PASSWORD")],
                volume: vec![
                    VolumeMount::bind(format!("/srv/pg{i}"), "/var/lib/postgresql/data")
                        .with_option("Z"),
                ],
                health_cmd: Some("pg_isready -U immich".into()),
                health_interval: Some("10s".parse().expect("a duration")),
                ..Container::default()
            },
            install: InstallSection::default_target(),
            ..ContainerUnit::default()
        })
        .collect()
}

fn main() {
    let corpus = corpus();
    let n = corpus.len();
    println!(
        "corpus: {n} files, {} bytes",
        corpus.iter().map(|(_, t)| t.len()).sum::<usize>()
    );

    report(
        "parse (lossless UnitFile)",
        measure(n, || {
            for (_, text) in &corpus {
                black_box(UnitFile::parse(black_box(text)).expect("corpus parses"));
            }
        }),
    );
    let parsed: Vec<(String, UnitFile)> = corpus
        .iter()
        .map(|(name, text)| (name.clone(), UnitFile::parse(text).expect("corpus parses")))
        .collect();
    report(
        "render (lossless, unchanged)",
        measure(n, || {
            for (_, file) in &parsed {
                black_box(file.render());
            }
        }),
    );
    report(
        "format (parse + canonical)",
        measure(n, || {
            for (_, text) in &corpus {
                black_box(format(black_box(text)).expect("corpus parses"));
            }
        }),
    );
    let typed_corpus: Vec<&(String, String)> = corpus
        .iter()
        .filter(|(name, text)| AnyUnit::parse(name, text).is_ok())
        .collect();
    report(
        "parse typed (AnyUnit)",
        measure(typed_corpus.len(), || {
            for (name, text) in &typed_corpus {
                black_box(AnyUnit::parse(name, black_box(text)).expect("typed parse"));
            }
        }),
    );
    let typed = typed_units();
    report(
        "render typed (ContainerUnit)",
        measure(typed.len(), || {
            for unit in &typed {
                black_box(unit.render().expect("renders"));
            }
        }),
    );
    let rendered: Vec<String> = typed.iter().map(|u| u.render().expect("renders")).collect();
    report(
        "parse typed (ContainerUnit)",
        measure(rendered.len(), || {
            for text in &rendered {
                black_box(ContainerUnit::parse("pg.container", black_box(text)).expect("parses"));
            }
        }),
    );
    let mut set = UnitSet::new();
    for (name, text) in &corpus {
        set.insert(name, text).expect("corpus parses");
    }
    report(
        "lint (whole corpus as one set)",
        measure(n, || {
            black_box(lint(&set, PodmanVersion::new(5, 4, 2)));
        }),
    );
}
