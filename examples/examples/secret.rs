//! Needs no host.
//!
//! Create and check secrets with `homelab-secrets`: `ensure` creates a missing
//! secret from its consumer's policy and never regenerates an existing one;
//! `check` says what is wrong with a value without showing it; look-alike names
//! are pointed out.
//!
//! Without arguments it works on an in-memory store holding what a real
//! deployment journal left behind: a PostgreSQL password made with
//! `openssl rand -base64 32` (symbols, and the newline of the pipe) and a
//! `redis_password` beside the new `redis-password`.
//!
//! With `--podman [NAME]` it works on Podman's secret store instead (the Podman
//! service must run): it creates the secret NAME (default
//! `homelab-example-token`) if missing, checks it, lists look-alikes, and
//! removes it again unless `--keep` is given.
//!
//! `cargo run -p immich-db-examples --example secret [--podman [NAME] [--keep]]`

use std::process::ExitCode;

use homelab_secrets::{
    Ensured, MemoryStore, Policy, SecretStore, SecretValue, check, ensure, near_duplicates_in,
    near_duplicates_of,
};

type Error = Box<dyn std::error::Error>;

/// Ensures `name` with `policy` and reports, never printing a value.
async fn ensure_and_report(
    store: &(impl SecretStore + ?Sized),
    name: &str,
    policy: &Policy,
) -> Result<bool, Error> {
    let outcome = ensure(store, name, policy).await?;
    let value = store.read(name).await?;
    let findings = check(&value, policy);
    match outcome {
        Ensured::Created => println!(
            "{name}: created for {} ({} bytes)",
            policy.consumer,
            value.len()
        ),
        _ => println!("{name}: kept as it was ({} bytes)", value.len()),
    }
    for finding in &findings {
        println!("  {name}: {finding}");
    }
    let others = near_duplicates_of(name, store.list().await?);
    for other in &others {
        println!("  {name}: look-alike secret {other}");
    }
    Ok(matches!(outcome, Ensured::Created))
}

async fn in_memory() -> Result<(), Error> {
    let store = MemoryStore::with_secrets([
        (
            "postgres-password",
            SecretValue::new("q2nO0Z6nHq8oVhC3F4mJ7bXyTzR1sWkPd9LuEaGiY+M=\n"),
        ),
        ("redis_password", SecretValue::new("from an old attempt")),
    ]);
    ensure_and_report(&store, "postgres-password", &Policy::postgres_password()).await?;
    ensure_and_report(&store, "redis-password", &Policy::valkey_password()).await?;
    ensure_and_report(&store, "immich-jwt-secret", &Policy::signing_key()).await?;
    for pair in near_duplicates_in(&store).await? {
        println!("{pair}");
    }
    // The existing password was kept: the database was initialised with it.
    let kept = store.read("postgres-password").await?;
    let findings = check(&kept, &Policy::postgres_password());
    if findings.is_empty() {
        return Err("the journal's password should have findings".into());
    }
    println!(
        "{} finding(s) on postgres-password: replace it on purpose (`immich-db secrets rotate postgres-password`)",
        findings.len()
    );
    Ok(())
}

async fn in_podman(name: &str, keep: bool) -> Result<(), Error> {
    let podman = homelab_podman::Podman::connect().await?;
    let policy = Policy::new("an example token");
    let created = ensure_and_report(&podman, name, &policy).await?;
    if created && !keep {
        podman.remove(name).await?;
        println!("{name}: removed again (pass --keep to keep it)");
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("secret: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = if args.first().is_some_and(|a| a == "--podman") {
        let name = args
            .get(1)
            .filter(|a| !a.starts_with("--"))
            .map_or("homelab-example-token", String::as_str);
        let keep = args.iter().any(|a| a == "--keep");
        runtime.block_on(in_podman(name, keep))
    } else {
        runtime.block_on(in_memory())
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("secret: {e}");
            ExitCode::FAILURE
        }
    }
}
