//! Podman secrets through the runtime, against the test host's real podman:
//! exact bytes, the store contract the secrets crate relies on, and hygiene.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use homelab_podman::{ConnectOptions, Error, Fallback, ObjectKind, Podman, Runtime, SecretOptions};
use homelab_secrets::{
    Ensured, Generator, Policy, SecretStore, SecretValue, StoreError, ensure, near_duplicates_in,
    rotate,
};
use immich_db_testhost::{Cleanup, Host, require_host, unique_name};

async fn connect(host: &Host) -> Podman {
    let socket = host.runtime_dir.join("podman/podman.sock");
    Podman::connect_with(
        &ConnectOptions::new()
            .socket(socket)
            .fallback(Fallback::Fail),
    )
    .await
    .expect("root's user socket answers")
}

/// The stored value as podman's own CLI shows it (its template adds one newline).
fn stored_bytes(host: &Host, name: &str) -> Vec<u8> {
    let out = host.podman([
        "secret",
        "inspect",
        "--showsecret",
        "--format",
        "{{.SecretData}}",
        name,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut bytes = out.stdout;
    assert_eq!(bytes.pop(), Some(b'\n'));
    bytes
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_are_stored_byte_for_byte() {
    let host = require_host!();
    let podman = connect(host).await;
    let mut cleanup = Cleanup::new(host);
    let values: Vec<(&str, Vec<u8>)> = vec![
        ("b64", b"abc+/=".to_vec()),
        ("quotes", br#"say "hello" 'there'"#.to_vec()),
        ("backslash", br"C:\path\n\\x".to_vec()),
        ("newlines", b"line one\nline two\n".to_vec()),
        ("spaces", b"  padded\t ".to_vec()),
        ("json", br#"{"a":[1,"b"]}"#.to_vec()),
        ("unicode", "pässwörd ✓ 密码".as_bytes().to_vec()),
        (
            "binary",
            vec![0xff, 0xfe, 0x00, 0x01, b'"', b'\\', 0x80, b'\n'],
        ),
        (
            "generated",
            Generator::BASE64.generate().unwrap().expose().to_vec(),
        ),
    ];
    for (label, bytes) in &values {
        let name = unique_name(&format!("exact-{label}"));
        cleanup.secret(&name);
        let value = SecretValue::new(bytes.clone());
        podman
            .create_secret(&name, &value, &SecretOptions::default())
            .await
            .unwrap();
        assert_eq!(&stored_bytes(host, &name), bytes, "{label}");
        if std::str::from_utf8(bytes).is_ok() {
            assert_eq!(podman.read_secret(&name).await.unwrap(), value, "{label}");
        } else {
            // Podman's API returns the value as a JSON string, which cannot carry
            // these bytes: reading says so instead of returning other bytes.
            let e = podman.read_secret(&name).await.unwrap_err();
            assert!(matches!(e, Error::InvalidSecret { .. }), "{label}: {e:?}");
            assert!(!format!("{e:?}{e}").contains('\u{fffd}'));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn podman_api_alone_would_store_json_quotes() {
    // The defect this crate works around, kept as a test: when podman-api stops
    // quoting, this fails and the workaround can go.
    let host = require_host!();
    let podman = connect(host).await;
    let name = unique_name("quoted");
    let mut cleanup = Cleanup::new(host);
    cleanup.secret(&name);
    let api = podman_api::Podman::unix(podman.socket());
    api.secrets()
        .create(
            &podman_api::opts::SecretCreateOpts::builder(&name).build(),
            "abc+/=",
        )
        .await
        .unwrap();
    assert_eq!(stored_bytes(host, &name), br#""abc+/=""#);
}

#[tokio::test(flavor = "multi_thread")]
async fn secret_lifecycle_and_refusals() {
    let host = require_host!();
    let podman = connect(host).await;
    let name = unique_name("life");
    let mut cleanup = Cleanup::new(host);
    cleanup.secret(&name);

    assert!(!podman.secret_exists(&name).await.unwrap());
    let e = podman.read_secret(&name).await.unwrap_err();
    assert!(
        matches!(
            e,
            Error::NotFound {
                kind: ObjectKind::Secret,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        podman
            .inspect_secret(&name)
            .await
            .unwrap_err()
            .is_not_found()
    );

    // Values podman would refuse are refused first, and nothing is created.
    for (value, words) in [
        (SecretValue::new(""), "empty"),
        (SecretValue::new(vec![b'x'; 512_000]), "at most"),
    ] {
        let e = podman
            .create_secret(&name, &value, &SecretOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(e, Error::InvalidSecret { .. }), "{e:?}");
        assert!(e.to_string().contains(words), "{e}");
        assert!(!podman.secret_exists(&name).await.unwrap());
    }
    // The largest value podman takes goes through whole.
    let big = SecretValue::new(vec![b'y'; homelab_podman::MAX_SECRET_LEN]);
    let created = podman
        .create_secret(&name, &big, &SecretOptions::default())
        .await
        .unwrap();
    assert_eq!(
        stored_bytes(host, &name).len(),
        homelab_podman::MAX_SECRET_LEN
    );
    assert_eq!(created.name, name);
    assert!(podman.secret_exists(&name).await.unwrap());
    let listed = podman.list_secrets().await.unwrap();
    let mine = listed.iter().find(|s| s.name == name).unwrap();
    assert_eq!(mine.id, created.id);
    assert_eq!(podman.inspect_secret(&name).await.unwrap(), created);
    let cli = host.podman_ok(["secret", "ls", "--format", "{{.ID}} {{.Name}}"]);
    assert!(
        cli.lines().any(|l| l == format!("{} {name}", created.id)),
        "{cli}"
    );

    // A second create is refused and the value is untouched.
    let e = podman
        .create_secret(&name, &SecretValue::new("other"), &SecretOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::AlreadyExists {
                kind: ObjectKind::Secret,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        stored_bytes(host, &name).len(),
        homelab_podman::MAX_SECRET_LEN
    );

    // Replacing changes the value in place.
    let replace = SecretOptions {
        replace: true,
        ..SecretOptions::default()
    };
    podman
        .create_secret(&name, &SecretValue::new("second"), &replace)
        .await
        .unwrap();
    assert_eq!(stored_bytes(host, &name), b"second");

    podman.remove_secret(&name).await.unwrap();
    assert!(!podman.secret_exists(&name).await.unwrap());
    assert!(
        podman
            .remove_secret(&name)
            .await
            .unwrap_err()
            .is_not_found()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_secrets_crate_works_on_podman() {
    let host = require_host!();
    let podman = connect(host).await;
    let prefix = unique_name("store");
    let (dash, underscore) = (
        format!("{prefix}-redis-password"),
        format!("{prefix}-redis_password"),
    );
    let pg = format!("{prefix}-postgres-password");
    let mut cleanup = Cleanup::new(host);
    for n in [&dash, &underscore, &pg] {
        cleanup.secret(n);
    }
    let store: &dyn SecretStore = &podman;

    // ensure creates once, then keeps the value.
    let policy = Policy::postgres_password();
    assert_eq!(ensure(store, &pg, &policy).await.unwrap(), Ensured::Created);
    let first = store.read(&pg).await.unwrap();
    assert!(first.expose().iter().all(u8::is_ascii_alphanumeric));
    assert_eq!(stored_bytes(host, &pg), first.expose());
    assert_eq!(
        ensure(store, &pg, &policy).await.unwrap(),
        Ensured::Kept { findings: vec![] }
    );
    assert_eq!(store.read(&pg).await.unwrap(), first);

    // rotate replaces it on purpose, and returns the old value.
    let new = Generator::alphanumeric(48).unwrap().generate().unwrap();
    let old = rotate(store, &pg, &new).await.unwrap();
    assert_eq!(old, first);
    assert_eq!(stored_bytes(host, &pg), new.expose());

    // The store contract: create never overwrites, replace never creates.
    assert!(matches!(
        store.create(&pg, &SecretValue::new("x")).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    assert!(matches!(
        store.replace(&dash, &SecretValue::new("x")).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(!store.exists(&dash).await.unwrap());

    // Near-duplicates, as the journal's author found by hand.
    store.create(&dash, &SecretValue::new("a")).await.unwrap();
    store
        .create(&underscore, &SecretValue::new("b"))
        .await
        .unwrap();
    let names = store.list().await.unwrap();
    assert!(names.contains(&dash) && names.contains(&underscore));
    let pairs = near_duplicates_in(store).await.unwrap();
    assert!(
        pairs
            .iter()
            .any(|p| p.first == dash && p.second == underscore),
        "{pairs:?}"
    );
    store.remove(&underscore).await.unwrap();
    assert!(matches!(
        store.remove(&underscore).await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_store_never_takes_an_id_prefix_for_a_name() {
    // Podman's own lookup falls back to a prefix of a secret's ID: asked for a
    // name nobody has, it answers with whichever secret's ID starts with it.
    let host = require_host!();
    let podman = connect(host).await;
    let name = unique_name("idprefix");
    let mut cleanup = Cleanup::new(host);
    cleanup.secret(&name);
    let value = SecretValue::new("kept-as-it-is");
    podman
        .create_secret(&name, &value, &SecretOptions::default())
        .await
        .unwrap();
    let id = host.podman_ok(["secret", "inspect", "--format", "{{.ID}}", &name]);
    let prefix = &id.trim()[..12];
    // What podman itself does with the prefix: it finds the other secret.
    assert!(host.podman(["secret", "exists", prefix]).status.success());

    let store: &dyn SecretStore = &podman;
    assert!(!store.exists(prefix).await.unwrap());
    assert!(matches!(
        store.read(prefix).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.replace(prefix, &SecretValue::new("other")).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.remove(prefix).await,
        Err(StoreError::NotFound { .. })
    ));
    // ensure under that name creates a secret of its own, leaving the first alone.
    cleanup.secret(prefix);
    assert_eq!(
        ensure(store, prefix, &Policy::postgres_password())
            .await
            .unwrap(),
        Ensured::Created
    );
    assert_eq!(stored_bytes(host, &name), value.expose());
    assert_ne!(stored_bytes(host, prefix), value.expose());
}

/// Files under `dir` changed since `since` (sockets and special files skipped).
fn recent_files(dir: &Path, since: SystemTime, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(meta) = entry.path().symlink_metadata() else {
            continue;
        };
        if meta.is_dir() {
            recent_files(&entry.path(), since, out);
        } else if meta.is_file()
            && meta.modified().is_ok_and(|m| m >= since)
            && meta.len() < (64 << 20)
        {
            out.push(entry.path());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn secret_values_never_reach_a_command_line_or_a_file() {
    let host = require_host!();
    let started = SystemTime::now() - Duration::from_secs(1);
    // Through a private service too: it is a process this library starts.
    let dir = tempfile::tempdir().unwrap();
    let private = Podman::connect_with(&ConnectOptions::new().socket(dir.path().join("none.sock")))
        .await
        .unwrap();
    let private_dir = private
        .private_service()
        .unwrap()
        .socket()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_owned();
    let shared = connect(host).await;

    let values: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let scans = Arc::new(AtomicUsize::new(0));
    let leaks: Arc<Mutex<Vec<String>>> = Arc::default();
    let scanner = {
        let (values, stop, scans, leaks) =
            (values.clone(), stop.clone(), scans.clone(), leaks.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let known = values.lock().unwrap().clone();
                for entry in std::fs::read_dir("/proc").unwrap().flatten() {
                    let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                        continue;
                    };
                    for v in &known {
                        if cmdline.windows(v.len()).any(|w| w == v.as_slice()) {
                            leaks.lock().unwrap().push(format!(
                                "{}: {}",
                                entry.path().display(),
                                String::from_utf8_lossy(&cmdline).replace('\0', " ")
                            ));
                        }
                    }
                }
                scans.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    // The scanner sees a value that is in a command line.
    let canary = format!(
        "canary{}",
        Generator::alphanumeric(44)
            .unwrap()
            .generate()
            .unwrap()
            .expose()
            .iter()
            .map(|b| char::from(*b))
            .collect::<String>()
    );
    values.lock().unwrap().push(canary.clone().into_bytes());
    let mut child = std::process::Command::new("sh")
        .args(["-c", "sleep 30", &canary])
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while leaks.lock().unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the scanner missed the canary"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    values.lock().unwrap().clear();
    tokio::time::sleep(Duration::from_millis(100)).await;
    leaks.lock().unwrap().clear();

    let mut cleanup = Cleanup::new(host);
    let generator = Generator::alphanumeric(44).unwrap();
    for round in 0..12 {
        let value = generator.generate().unwrap();
        values.lock().unwrap().push(value.expose().to_vec());
        let name = unique_name("hygiene");
        cleanup.secret(&name);
        let runtime: &dyn Runtime = if round % 2 == 0 { &private } else { &shared };
        runtime
            .create_secret(&name, &value, &SecretOptions::default())
            .await
            .unwrap();
        let replaced = generator.generate().unwrap();
        values.lock().unwrap().push(replaced.expose().to_vec());
        let store: &dyn SecretStore = if round % 2 == 0 { &private } else { &shared };
        rotate(store, &name, &replaced).await.unwrap();
        assert_eq!(store.read(&name).await.unwrap(), replaced);
        // Give the scanner a pass while the secret exists.
        let seen = scans.load(Ordering::Relaxed);
        while scans.load(Ordering::Relaxed) < seen + 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    // A password handed to a command in a container, on its standard input.
    let container = unique_name("hygiene-ctr");
    cleanup.container(&container);
    host.podman_ok(["run", "-d", "--name", &container, &host.valkey_image]);
    let password = generator.generate().unwrap();
    values.lock().unwrap().push(password.expose().to_vec());
    let set = homelab_podman::ExecSpec::new([
        "sh",
        "-c",
        "read -r p; printf 'CONFIG SET requirepass %s\n' \"$p\" | valkey-cli",
    ])
    .stdin(password.expose().to_vec());
    let out = shared.exec(&container, &set).await.unwrap();
    assert_eq!(out.stdout_text().trim(), "OK", "{out:?}");
    let ping = homelab_podman::ExecSpec::new([
        "sh",
        "-c",
        "REDISCLI_AUTH=\"$(cat)\" exec valkey-cli ping",
    ]);
    let out = shared
        .exec(&container, &ping.clone().stdin(password.expose().to_vec()))
        .await
        .unwrap();
    assert_eq!(out.stdout_text().trim(), "PONG", "{out:?}");
    let out = shared.exec(&container, &ping.stdin("wrong")).await.unwrap();
    assert_ne!(out.stdout_text().trim(), "PONG", "{out:?}");

    stop.store(true, Ordering::Relaxed);
    scanner.join().unwrap();
    assert!(scans.load(Ordering::Relaxed) >= 24);
    let leaks = leaks.lock().unwrap();
    assert!(
        leaks.is_empty(),
        "secret values in command lines: {leaks:?}"
    );

    // No file written meanwhile, where this library or podman on its behalf
    // might write, holds a value.
    let mut files = Vec::new();
    for dir in [
        private_dir.as_path(),
        &host.runtime_dir,
        Path::new("/tmp"),
        &std::env::temp_dir(),
        // Where podman keeps containers' and exec sessions' files.
        Path::new("/var/lib/containers/storage/overlay-containers"),
        Path::new("/run/containers/storage"),
        Path::new("/run/libpod"),
    ] {
        recent_files(dir, started, &mut files);
    }
    let known = values.lock().unwrap().clone();
    for file in &files {
        let Ok(bytes) = std::fs::read(file) else {
            continue;
        };
        for v in &known {
            assert!(
                !bytes.windows(v.len()).any(|w| w == v.as_slice()),
                "{} holds a secret value",
                file.display()
            );
        }
    }
    drop(private);
    assert!(!private_dir.exists());
}
