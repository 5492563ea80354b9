//! What connecting costs, and what asking the connection for podman's version
//! costs afterwards, against the test host's podman (root's user socket,
//! `$XDG_RUNTIME_DIR/podman/podman.sock`).
//!
//! For scale it also times podman's `/version` query on its own: podman answers
//! it slowly (it asks the package manager about conmon and the OCI runtime),
//! and a connection used to make it while connecting and again for each
//! `version()`.
//!
//! `cargo bench -p homelab-podman --bench connect`

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use homelab_podman::{ConnectOptions, Fallback, Podman, Runtime};

const RUNS: usize = 7;

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// One `GET /version` on the socket, the whole answer read.
fn raw_version_query(socket: &Path) -> Duration {
    let start = Instant::now();
    let mut stream = std::os::unix::net::UnixStream::connect(socket).expect("connect");
    stream
        .write_all(b"GET /v4.0.0/libpod/version HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
        .expect("send the query");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("read the answer");
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "podman answered {answer:?}"
    );
    start.elapsed()
}

fn main() {
    let runtime_dir = std::env::var_os("XDG_RUNTIME_DIR")
        .map_or_else(|| PathBuf::from("/run/user/0"), PathBuf::from);
    let socket = runtime_dir.join("podman/podman.sock");
    if !socket.exists() {
        println!(
            "SKIPPED: no podman socket at {} (run scripts/provision)",
            socket.display()
        );
        return;
    }
    let options = ConnectOptions::new()
        .socket(&socket)
        .fallback(Fallback::Fail);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        // Warm up the service (socket activation, caches).
        let podman = Podman::connect_with(&options).await.expect("connect");
        podman.version().await.expect("version");

        let mut connect = Vec::new();
        let mut version = Vec::new();
        for _ in 0..RUNS {
            let start = Instant::now();
            let podman = Podman::connect_with(&options).await.expect("connect");
            connect.push(start.elapsed());
            let start = Instant::now();
            let v = podman.version().await.expect("version");
            version.push(start.elapsed());
            assert!(!v.version.is_empty() && !v.api_version.is_empty(), "{v:?}");
        }
        let query: Vec<Duration> = (0..RUNS).map(|_| raw_version_query(&socket)).collect();
        println!("podman at {}, median of {RUNS} runs:", socket.display());
        println!(
            "  Podman::connect_with            {:>10}",
            ms(median(connect))
        );
        println!(
            "  version() after connecting      {:>10}",
            ms(median(version))
        );
        println!(
            "  podman's /version query alone   {:>10}",
            ms(median(query))
        );
    });
}
