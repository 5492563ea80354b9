//! Needs a BTRFS filesystem.
//!
//! A database directory with copy-on-write off, with `homelab-btrfs`, and the
//! mistake it protects against: a file written before NOCOW was set keeps
//! copy-on-write, `chattr +C` cannot change that any more, the audit finds it
//! and the migration rewrites it.
//!
//! It works in a new directory below the BTRFS directory it is given (by
//! default the test host's pool, `/mnt/immich-db-test/btrfs`), and removes it
//! at the end:
//!
//! `cargo run -p immich-db-examples --example nocow_dir [BTRFS-DIR]`

use std::path::PathBuf;
use std::process::ExitCode;

use homelab_btrfs::{
    DirChange, DirSpec, Nocow, ServiceState, attributes, audit, ensure_dir, is_btrfs,
    migrate_to_nocow, plan_dir,
};

/// Removes the example's directory however the example ends.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(parent: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    if !is_btrfs(parent)? {
        return Err(format!(
            "{} is not on BTRFS: NOCOW has no effect there; give a directory on a BTRFS filesystem",
            parent.display()
        )
        .into());
    }
    let scratch = Scratch(parent.join(format!("nocow-example-{}", std::process::id())));
    let dir = scratch.0.clone();
    let spec = DirSpec::new(&dir).mode(0o700).nocow(Nocow::On);

    // The mistake: the directory exists, copy-on-write, and the database has
    // already written a file when NOCOW is set.
    ensure_dir(&DirSpec::new(&dir).nocow(Nocow::Off))?;
    std::fs::write(dir.join("early.dat"), vec![1u8; 256 * 1024])?;
    println!("plan: {:?}", plan_dir(&spec)?.changes);
    let report = ensure_dir(&spec)?;
    for change in &report.changes {
        if let DirChange::NocowSet { existing_entries } = change {
            println!(
                "NOCOW set on {}; {existing_entries} entry(ies) were there before",
                dir.display()
            );
        }
    }
    std::fs::write(dir.join("late.dat"), vec![2u8; 256 * 1024])?;
    println!(
        "lsattr: {} {}, early.dat {}, late.dat {}",
        dir.display(),
        attributes(&dir)?,
        attributes(dir.join("early.dat"))?,
        attributes(dir.join("late.dat"))?
    );

    // The audit finds the file NOCOW never reached.
    let found = audit(&dir)?;
    for file in &found.cow_files {
        println!(
            "copy-on-write below NOCOW: {} ({} bytes)",
            file.path.display(),
            file.size
        );
    }
    // The fix, with the database stopped: rewrite it into a NOCOW copy.
    let paths: Vec<PathBuf> = found.cow_files.iter().map(|f| f.path.clone()).collect();
    let migrated = migrate_to_nocow(&paths, &ServiceState::Stopped)?;
    println!(
        "migrated {} file(s), {} bytes",
        migrated.migrated.len(),
        migrated.bytes()
    );

    let after = audit(&dir)?;
    let usage = after.total().map_or(0, |t| t.allocated);
    println!(
        "audit: clean = {}, {} bytes allocated, early.dat is now {}",
        after.is_clean(),
        usage,
        attributes(dir.join("early.dat"))?
    );
    if after.is_clean() && found.cow_files.len() == 1 {
        Ok(())
    } else {
        Err("the audit did not come out as expected".into())
    }
}

fn main() -> ExitCode {
    let parent = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("/mnt/immich-db-test/btrfs"), PathBuf::from);
    match run(&parent) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nocow_dir: {e}");
            ExitCode::FAILURE
        }
    }
}
